#!/usr/bin/env python3
"""Every wait on the host in kernel code is bounded (issue 17's rule).

Reads the guest's kernel code of hv_rustic.ko, the Rust and C files under
rust/, vmbus/ and drivers/ (not the simulator, which is the host: any
`sim/` folder; not host-only code: `target/`, `fuzz/`, `bench/`, a crate's
`tests/`), with comments and literals blanked, and applies two grep-level
rules. KTAP on stdout: one case per folder, or one `not ok` per violation
naming file:line, the call and why.

1. A wait with no bound is not used. Forbidden, as called (a plain call,
   a method, `bindings::...`):
   - C waits without a timeout: `wait_event*` and `wait_for_completion*`
     and `wait_on_bit*` whose name has no `timeout`, `schedule()` (use
     `schedule_timeout*`), the semaphore `down`/`down_interruptible`/
     `down_killable` (use `down_timeout`);
   - the Rust `CondVar` waits without a timeout: `.wait(&mut ...)`,
     `.wait_interruptible(&mut ...)`, `.wait_interruptible_freezable(&mut
     ...)` (the `&mut` is the guard they take; the project's own helpers
     named `wait` take a limit first and are not these).
   The bounded ones the code may use: `*_timeout*` waits, `msleep`,
   `usleep_range`, `fsleep`, `ssleep`, `udelay`, `mdelay`, `cond_resched`.
2. A loop that sleeps or spins (`loop`/`while` in Rust; `while`, `do` and
   `for` without a counter in C; calling any wait or sleep above, or
   `cpu_relax`/`spin_loop`) names its bound in its header or body: a
   deadline or limit (`deadline`, `now_ms`, `jiffies`, `time_after`,
   `time_before`, `ktime`, `timeout`, `tries`, `retries`, `attempts`,
   `limit`, `elapsed`, `remaining`). A Rust `for` loop is counted, so
   bounded; a C `for` with an `i < N` style test is too.

Usage: waits.py [ROOT]   ROOT: the tree to check (by default the repository
this file is in).
"""

import os
import re
import sys

FOLDERS = ["rust", "vmbus", "drivers"]
SKIP_DIRS = {"sim", "target", "fuzz", "bench", "tests"}

UNBOUNDED_C = re.compile(
    r"\b(?P<name>(?:wait_event|wait_for_completion|wait_on_bit)\w*|schedule|down|down_interruptible|down_killable)\s*\(")
UNBOUNDED_RUST_CONDVAR = re.compile(
    r"\.\s*(?P<name>wait|wait_interruptible|wait_interruptible_freezable)\s*\(\s*&\s*mut\b")
WAITING = re.compile(
    r"\b(?:msleep\w*|usleep_range\w*|fsleep|ssleep|udelay|mdelay|cpu_relax|spin_loop|schedule\w*"
    r"|wait_event\w*|wait_for_completion\w*|wait_on_bit\w*|wait_interruptible\w*|wait_timeout|down_timeout)\s*\("
    r"|\.\s*wait\w*\s*\(")
BOUND = re.compile(
    r"deadline|now_ms|jiffies|time_after|time_before|ktime|timeout|\btries\b|retries|attempts|limit|elapsed|remaining")


def blank(text, rust):
    """The text with comments, string and char literals replaced by spaces
    (newlines kept), so that positions and line numbers stay."""
    out = list(text)
    i, n = 0, len(text)

    def wipe(a, b):
        for k in range(a, min(b, n)):
            if out[k] != "\n":
                out[k] = " "

    while i < n:
        c = text[i]
        if text.startswith("//", i):
            j = text.find("\n", i)
            j = n if j < 0 else j
            wipe(i, j)
            i = j
        elif text.startswith("/*", i):
            depth, j = 1, i + 2
            while depth and j < n:
                if rust and text.startswith("/*", j):
                    depth, j = depth + 1, j + 2
                elif text.startswith("*/", j):
                    depth, j = depth - 1, j + 2
                else:
                    j += 1
            wipe(i, j)
            i = j
        elif rust and re.match(r'b?r#*"', text[i:i + 260]) and (i == 0 or not (text[i - 1].isalnum() or text[i - 1] == "_")):
            m = re.match(r'b?r(#*)"', text[i:])
            close = '"' + m.group(1)
            j = text.find(close, i + m.end())
            j = n if j < 0 else j + len(close)
            wipe(i, j)
            i = j
        elif c == '"':
            j = i + 1
            while j < n and text[j] != '"':
                j += 2 if text[j] == "\\" else 1
            wipe(i, j + 1)
            i = j + 1
        elif c == "'":
            # A char literal ('x', '\n', '\u{..}'), not a Rust lifetime.
            m = re.match(r"'(?:\\[^']{1,10}|[^\\'\n])'", text[i:])
            if m:
                wipe(i, i + m.end())
                i += m.end()
            else:
                i += 1
        else:
            i += 1
    return "".join(out)


def line_of(text, pos):
    return text.count("\n", 0, pos) + 1


def matching_brace(text, open_pos):
    """The position of the `}` that closes the `{` at open_pos."""
    depth = 0
    for k in range(open_pos, len(text)):
        if text[k] == "{":
            depth += 1
        elif text[k] == "}":
            depth -= 1
            if depth == 0:
                return k
    return len(text)


def loops(code, rust):
    """(line, header, body) of each loop that is not counted."""
    if rust:
        starts = re.finditer(r"\b(?P<kw>loop|while)\b", code)
    else:
        starts = re.finditer(r"\b(?P<kw>while|do|for)\b", code)
    for m in starts:
        brace = code.find("{", m.end())
        semi = code.find(";", m.end())
        kw = m.group("kw")
        if not rust and kw in ("while", "for"):
            # The header is the parenthesised part; a C `while (...);` closing a do loop has no body of its own.
            p = code.find("(", m.end())
            if p < 0:
                continue
            depth, k = 0, p
            while k < len(code):
                if code[k] == "(":
                    depth += 1
                elif code[k] == ")":
                    depth -= 1
                    if depth == 0:
                        break
                k += 1
            header = code[m.start():k + 1]
            rest = code[k + 1:].lstrip()
            if rest.startswith(";"):
                continue
            if kw == "for" and re.search(r";[^;]*[<>]=?[^;]*;", header):
                continue
            if rest.startswith("{"):
                b = k + 1 + (len(code[k + 1:]) - len(rest))
                body = code[b:matching_brace(code, b) + 1]
            else:
                end = code.find(";", k + 1)
                body = code[k + 1:end + 1]
        else:
            if brace < 0 or (not rust and 0 <= semi < brace):
                continue
            header = code[m.start():brace]
            if rust and kw == "loop" and header.strip() != "loop":
                continue
            body = code[brace:matching_brace(code, brace) + 1]
            if not rust and kw == "do":
                tail = re.match(r"\s*while\s*\([^;]*\)", code[brace + len(body):])
                header += tail.group() if tail else ""
        yield line_of(code, m.start()), header, body


def check_file(path, rel, rust):
    with open(path, encoding="utf-8", errors="replace") as f:
        code = blank(f.read(), rust)
    found, waits = [], 0
    for m in UNBOUNDED_C.finditer(code):
        name = m.group("name")
        if "timeout" in name:
            continue
        # A definition or declaration of a function of that name is not a call.
        before = code[max(0, m.start() - 40):m.start()]
        if re.search(r"\b(fn|void|int|long|bool|u32|static)\s+$", before):
            continue
        found.append((line_of(code, m.start()), name + "()", "a wait with no timeout"))
    for m in UNBOUNDED_RUST_CONDVAR.finditer(code):
        found.append((line_of(code, m.start()), "." + m.group("name") + "(&mut ...)",
                      "a CondVar wait with no timeout: use wait_interruptible_timeout"))
    for line, header, body in loops(code, rust):
        if not WAITING.search(body):
            continue
        waits += 1
        if BOUND.search(header) or BOUND.search(body):
            continue
        kw = header.split()[0] if header.split() else "loop"
        found.append((line, kw if kw == "loop" else kw + " loop", "sleeps or spins with no deadline or limit in sight"))
    waits += len(WAITING.findall(code))
    return found, waits


def check(root):
    results, files, waits = [], 0, 0
    for folder in FOLDERS:
        bad = []
        top = os.path.join(root, folder)
        for dirpath, dirnames, filenames in os.walk(top):
            dirnames[:] = sorted(d for d in dirnames if d not in SKIP_DIRS)
            for name in sorted(filenames):
                if not name.endswith((".rs", ".c", ".h")):
                    continue
                path = os.path.join(dirpath, name)
                rel = os.path.relpath(path, root)
                found, w = check_file(path, rel, name.endswith(".rs"))
                files += 1
                waits += w
                bad += ["%s:%d: %s (%s)" % (rel, line, what, why) for line, what, why in sorted(found)]
        results.append((folder, bad))
    lines = []
    for folder, bad in results:
        if bad:
            lines += [("not ok", "waits-%s # %s" % (folder, b)) for b in bad]
        else:
            lines.append(("ok", "waits-%s" % folder))
    print("KTAP version 1")
    print("1..%d" % len(lines))
    print("# %d files, %d waits and waiting loops checked" % (files, waits))
    for k, (status, what) in enumerate(lines, 1):
        print("%s %d %s" % (status, k, what))
    return 1 if any(s == "not ok" for s, _ in lines) else 0


if __name__ == "__main__":
    args = sys.argv[1:]
    root = args[0] if args else os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "..")
    sys.exit(check(root))
