// SPDX-License-Identifier: GPL-2.0
//! KUnit from Rust: the running case and the expectation macros the
//! module's suites (`tests/kunit/`) use.

use crate::rust::bindings;
use kernel::str::CStr;

/// A running KUnit case, as handed to a Rust case function by the C suite.
pub(crate) struct KunitCase(*mut bindings::kunit);

impl KunitCase {
    /// Wraps the `struct kunit *` a KUnit case function receives.
    ///
    /// # Safety
    ///
    /// `test` must be the pointer KUnit passed to the running case, and the
    /// value must not outlive that case.
    pub(crate) unsafe fn from_raw(test: *mut bindings::kunit) -> Self {
        KunitCase(test)
    }

    /// Records a failed check; the case goes on, as KUNIT_EXPECT does.
    pub(crate) fn fail(&self, file: &'static CStr, line: u32, what: &'static CStr) {
        let line = i32::try_from(line).unwrap_or(i32::MAX);
        // SAFETY: `self.0` is the running case's `struct kunit` (type
        // invariant); the strings are NUL-terminated and static.
        unsafe { bindings::rustic_kunit_fail(self.0, file.as_char_ptr(), line, what.as_char_ptr()) }
    }
}

/// `kunit_expect!(case, condition)`: fails the case (and goes on) when the
/// condition is false, naming the file, line and condition.
macro_rules! kunit_expect {
    ($case:expr, $cond:expr) => {
        if !$cond {
            $case.fail(
                kernel::c_str!(file!()),
                line!(),
                kernel::c_str!(stringify!($cond)),
            );
        }
    };
}
pub(crate) use kunit_expect;

/// `kunit_fail!(case, "why")`: fails the case unconditionally, saying why.
macro_rules! kunit_fail {
    ($case:expr, $why:literal) => {
        $case.fail(kernel::c_str!(file!()), line!(), kernel::c_str!($why))
    };
}
pub(crate) use kunit_fail;
