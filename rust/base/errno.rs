// SPDX-License-Identifier: GPL-2.0
//! Error codes 6.12's `kernel::error::code` does not name.
#![expect(non_snake_case, reason = "named like the error codes they stand beside")]

use kernel::error::Error;

/// `-ETIMEDOUT`: a wait on the host ran out.
pub(crate) fn ETIMEDOUT() -> Error {
    // CAST: ETIMEDOUT (110) fits an i32.
    Error::from_errno(-(kernel::bindings::ETIMEDOUT as i32))
}

/// `-EOPNOTSUPP`.
pub(crate) fn EOPNOTSUPP() -> Error {
    // CAST: EOPNOTSUPP (95) fits an i32.
    Error::from_errno(-(kernel::bindings::EOPNOTSUPP as i32))
}
