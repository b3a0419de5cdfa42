//! The byte layouts, pinned to the C structs: constants checked here, and
//! where gcc and the uapi header (`/usr/include/linux/hyperv.h`, from
//! linux-libc-dev) are installed, the same numbers taken from the C
//! compiler's `sizeof`/`offsetof`. The kernel-only structs
//! (`include/linux/hyperv.h`: IC headers, shutdown, heartbeat, time sync)
//! are pinned by size; their values come from the 6.12 header.

use hv_ic_core::icmsg::{IcHeader, IcVersion, ICMSG_HDR, IC_HDR_SIZE, PIPE_HDR_SIZE};
use hv_ic_core::kvp::{self, off};
use hv_ic_core::{heartbeat, negotiate, shutdown, timesync, vss};

/// (C expression, this crate's value).
fn uapi_facts() -> Vec<(&'static str, usize)> {
    vec![
        ("sizeof(struct hv_kvp_msg)", kvp::MSG_SIZE),
        ("sizeof(struct hv_kvp_ip_msg)", kvp::IP_MSG_SIZE),
        (
            "sizeof(struct hv_kvp_exchg_msg_value)",
            kvp::VALUE_STRUCT_SIZE,
        ),
        ("sizeof(struct hv_vss_msg)", vss::MSG_SIZE),
        ("offsetof(struct hv_kvp_msg, kvp_hdr.pool)", off::POOL),
        ("offsetof(struct hv_kvp_msg, body)", off::BODY),
        (
            "offsetof(struct hv_kvp_msg, body.kvp_set.data.value_type)",
            off::VALUE_TYPE,
        ),
        (
            "offsetof(struct hv_kvp_msg, body.kvp_set.data.key_size)",
            off::KEY_SIZE,
        ),
        (
            "offsetof(struct hv_kvp_msg, body.kvp_set.data.value_size)",
            off::VALUE_SIZE,
        ),
        (
            "offsetof(struct hv_kvp_msg, body.kvp_get.data.key)",
            off::KEY,
        ),
        (
            "offsetof(struct hv_kvp_msg, body.kvp_get.data.value)",
            off::VALUE,
        ),
        (
            "offsetof(struct hv_kvp_msg, body.kvp_enum_data.index)",
            off::ENUM_INDEX,
        ),
        (
            "offsetof(struct hv_kvp_msg, body.kvp_enum_data.data.key)",
            off::ENUM_SHIFT + off::KEY,
        ),
        (
            "offsetof(struct hv_kvp_msg, body.kvp_enum_data.data.value)",
            off::ENUM_SHIFT + off::VALUE,
        ),
        (
            "offsetof(struct hv_kvp_msg, body.kvp_delete.key_size)",
            off::DELETE_KEY_SIZE,
        ),
        (
            "offsetof(struct hv_kvp_msg, body.kvp_delete.key)",
            off::DELETE_KEY,
        ),
        (
            "offsetof(struct hv_kvp_msg, body.kvp_register.version)",
            off::REGISTER_VERSION,
        ),
        (
            "offsetof(struct hv_kvp_msg, body.kvp_ip_val.adapter_id)",
            off::IP_VAL + off::IP_ADAPTER_ID,
        ),
        (
            "offsetof(struct hv_kvp_msg, body.kvp_ip_val.addr_family)",
            off::IP_VAL + off::IP_ADDR_FAMILY,
        ),
        (
            "offsetof(struct hv_kvp_msg, body.kvp_ip_val.dhcp_enabled)",
            off::IP_VAL + off::IP_DHCP,
        ),
        (
            "offsetof(struct hv_kvp_msg, body.kvp_ip_val.ip_addr)",
            off::IP_VAL + off::IP_ADDR,
        ),
        (
            "offsetof(struct hv_kvp_msg, body.kvp_ip_val.sub_net)",
            off::IP_VAL + off::IP_SUBNET,
        ),
        (
            "offsetof(struct hv_kvp_msg, body.kvp_ip_val.gate_way)",
            off::IP_VAL + off::IP_GATEWAY,
        ),
        (
            "offsetof(struct hv_kvp_msg, body.kvp_ip_val.dns_addr)",
            off::IP_VAL + off::IP_DNS,
        ),
        (
            "offsetof(struct hv_kvp_ip_msg, kvp_ip_val)",
            off::IP_MSG_VAL,
        ),
        (
            "offsetof(struct hv_kvp_ip_msg, kvp_ip_val.dns_addr)",
            off::IP_MSG_VAL + off::IP_DNS,
        ),
        ("offsetof(struct hv_vss_msg, vss_cf.flags)", 8),
        ("HV_KVP_EXCHANGE_MAX_KEY_SIZE", kvp::MAX_KEY_SIZE),
        ("HV_KVP_EXCHANGE_MAX_VALUE_SIZE", kvp::MAX_VALUE_SIZE),
        ("MAX_ADAPTER_ID_SIZE", kvp::MAX_ADAPTER_ID),
        ("MAX_IP_ADDR_SIZE", kvp::MAX_IP_ADDR),
        ("MAX_GATEWAY_SIZE", kvp::MAX_GATEWAY),
        ("KVP_OP_REGISTER1", kvp::OP_REGISTER1.into()),
        ("KVP_OP_SET_IP_INFO", kvp::OP_SET_IP_INFO.into()),
        ("KVP_POOL_COUNT", kvp::POOL_COUNT.into()),
        ("VSS_OP_FREEZE", vss::OP_FREEZE.into()),
        ("VSS_OP_THAW", vss::OP_THAW.into()),
        ("VSS_OP_HOT_BACKUP", vss::OP_HOT_BACKUP.into()),
        ("VSS_OP_REGISTER1", vss::OP_REGISTER1.into()),
        (
            "VSS_HBU_NO_AUTO_RECOVERY",
            vss::HBU_NO_AUTO_RECOVERY as usize,
        ),
        ("UTIL_FW_VERSION", 3 << 16),
        ("HV_E_FAIL", hv_ic_core::icmsg::E_FAIL as usize),
        ("HV_S_CONT", hv_ic_core::icmsg::S_CONT as usize),
        (
            "HV_GUID_NOTFOUND",
            hv_ic_core::icmsg::GUID_NOTFOUND as usize,
        ),
    ]
}

#[test]
fn uapi_layouts_are_pinned() {
    // The numbers gcc gave for 6.12's include/uapi/linux/hyperv.h.
    let pinned = [
        7432, 7428, 2572, 12, 1, 4, 4, 8, 12, 16, 528, 4, 20, 532, 4, 8, 4, 4, 260, 261, 262, 2310,
        4358, 5382, 2, 5380, 8,
    ];
    for ((what, ours), want) in uapi_facts().into_iter().zip(pinned) {
        assert_eq!(ours, want, "{what}");
    }
}

#[test]
fn uapi_layouts_match_the_c_compiler() {
    let header = std::path::Path::new("/usr/include/linux/hyperv.h");
    let gcc = std::process::Command::new("gcc").arg("--version").output();
    if !header.exists() || gcc.is_err() {
        eprintln!("skipped: no gcc or no {}", header.display());
        return;
    }
    let dir = std::env::temp_dir().join(format!("hv-ic-core-layout-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let mut c = String::from(
        "#include <stdio.h>\n#include <stddef.h>\n#include <linux/hyperv.h>\nint main(void) {\n",
    );
    for (what, _) in uapi_facts() {
        c += &format!("  printf(\"%lu\\n\", (unsigned long)({what}));\n");
    }
    c += "  return 0;\n}\n";
    std::fs::write(dir.join("l.c"), c).unwrap();
    let out = std::process::Command::new("gcc")
        .arg("-o")
        .arg(dir.join("l"))
        .arg(dir.join("l.c"))
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let run = std::process::Command::new(dir.join("l")).output().unwrap();
    let got: Vec<usize> = String::from_utf8(run.stdout)
        .unwrap()
        .lines()
        .map(|l| l.parse().unwrap())
        .collect();
    std::fs::remove_dir_all(&dir).ok();
    for ((what, ours), c) in uapi_facts().into_iter().zip(got) {
        assert_eq!(ours, c, "{what}");
    }
}

// The largest message fits the receive buffer.
const _: () = assert!(ICMSG_HDR + kvp::IP_MSG_SIZE <= hv_ic_core::service::RECV_BUFFER_SIZE);

#[test]
fn kernel_struct_sizes() {
    assert_eq!((PIPE_HDR_SIZE, IC_HDR_SIZE, ICMSG_HDR), (8, 20, 28));
    assert_eq!(negotiate::NEGOTIATE_HDR, 8);
    assert_eq!(negotiate::packet_size(1, 1), 44);
    assert_eq!(negotiate::RESPONSE_MSG_SIZE, 0x10);
    assert_eq!(shutdown::BODY_SIZE, 2060);
    assert_eq!(heartbeat::BODY_SIZE, 40);
    assert_eq!((timesync::DATA_SIZE, timesync::REF_DATA_SIZE), (25, 22));
    assert_eq!(timesync::WLTIMEDELTA, 116_444_736_000_000_000);
}

#[test]
fn the_ic_header_round_trips_field_by_field() {
    let h = IcHeader {
        pipe_flags: 0x0403_0201,
        pipe_size: 0x0807_0605,
        frame_version: IcVersion::new(0x0a09, 0x0c0b),
        msg_type: 0x0e0d,
        msg_version: IcVersion::new(0x100f, 0x1211),
        msg_size: 0x1413,
        status: 0x1817_1615,
        transaction_id: 0x19,
        flags: 0x1a,
    };
    let mut b = [0xffu8; 28];
    h.write(&mut b).unwrap();
    let want: Vec<u8> = (1..=0x1a).chain([0, 0]).collect();
    assert_eq!(b.to_vec(), want);
    assert_eq!(IcHeader::parse(&b), Ok(h));
}
