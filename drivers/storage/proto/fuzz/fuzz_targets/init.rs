//! The guest's initialization driven by arbitrary host answers: the input
//! is a sequence of length-prefixed packets. Whatever the host says, the
//! guest proposes each version at most once, newest first, and ends within
//! seven answers.
#![no_main]

use libfuzzer_sys::fuzz_target;
use storvsc_core::guest::{Class, Init, InitStep};
use storvsc_core::vstor::Operation;

fuzz_target!(|data: &[u8]| {
    let Some((&sel, mut rest)) = data.split_first() else {
        return;
    };
    let class = [Class::Scsi, Class::Ide, Class::Fc][usize::from(sel) % 3];
    let (mut init, first) = Init::start(class);
    let mut step = InitStep::Send(first);
    let mut last_version: Option<u16> = None;
    let mut answers = 0;
    while let InitStep::Send(p) = step {
        if p.operation == Operation::QueryProtocolVersion {
            let v = p.version().0;
            assert!(last_version.map_or(true, |l| l > v));
            last_version = Some(v);
        }
        let Some((&len, tail)) = rest.split_first() else {
            return;
        };
        let (answer, tail) = tail.split_at(usize::from(len).min(tail.len()));
        rest = tail;
        step = init.on_reply(answer);
        answers += 1;
        assert!(answers <= 7);
    }
    if let InitStep::Done(n) = step {
        assert_eq!(Some(n.version.raw()), last_version);
        assert_eq!(n.fc_names.is_some(), class == Class::Fc);
    }
});
