#!/usr/bin/env python3
"""The module's layers depend one way (rustic.rs says which they are).

Reads every Rust file of hv_rustic.ko, found by following the `mod`
declarations from rustic.rs (with `#[path]` and inline modules, whatever
their cfg), finds each reference to another module of the crate, resolves it
to the file that holds the module, and checks that the referring file's
layer may use that file's layer. KTAP on stdout: a `module-tree` case, then
one case per layer that can go wrong, or one `not ok` line per violation,
naming file:line and the path as written.

References: `crate::` and `$crate::` paths, `super::` and `self::` chains
(resolved against the module they are written in, inline modules included),
and paths whose first segment is a child module of that module; in `use`
items (brace groups expanded, over several lines) and inline in code.
Comments and string literals are not code. A `#[path]` declaration is a
reference to the file it names. References across layers are written as
`crate::` paths: a `super::` chain that leaves its file's layer fails too.

Layers, by the folder a file is in:
  core     vmbus/core/src, drivers/<class>/proto/src: the kernel-independent
           crates; each may use only itself (Cargo checks it as well)
  kernel   rust/: may use rust/ and vmbus/core (the shared-memory accessor)
  vmbus    vmbus/ (not core, not bench): rust/, vmbus/core, vmbus/
  drivers  drivers/ (not sim, not proto): rust/, vmbus/, the core crates,
           drivers/
  sim      tests/, drivers/<class>/sim/: anything
  root     rustic.rs: anything
The simulator's kernel side, rust/sim/, is in the kernel layer (it may use no
more than rust/ does) and, like the other simulator code, only rust/sim/
itself, the sim layer and the root may use it.

Usage: layers.py [--list] [ROOT]   ROOT: the tree to check (by default the
repository this file is in); --list: every resolved reference, as a KTAP
comment before the results.
"""

import bisect
import os
import re
import sys

CORE_PREFIX = "core:"
# What the kernel's module! macro defines at the crate root, for every layer.
ROOT_ITEMS_FOR_ALL = {"THIS_MODULE", "__LOG_PREFIX"}
LAYER_CASES = ["core", "kernel", "vmbus", "drivers"]


def file_layer(rel):
    """The layer of a file by its folder; None for a file outside them."""
    p = rel.split("/")
    if rel == "rustic.rs":
        return "root"
    if p[0] == "vmbus" and p[1:3] == ["core", "src"] and len(p) > 3:
        return CORE_PREFIX + "vmbus/core"
    if p[0] == "drivers" and len(p) > 4 and p[2] == "proto" and p[3] == "src":
        return CORE_PREFIX + "drivers/%s/proto" % p[1]
    if p[0] == "drivers" and len(p) > 3 and p[2] == "sim":
        return "sim"
    if p[0] == "tests" and len(p) > 1 and (p[1] in ("sim", "drivers", "kunit") or rel == "tests/mod.rs"):
        return "sim"
    if p[0] == "rust" and len(p) > 2 and p[1] == "sim":
        return "kernel-sim"
    if p[0] == "rust" and len(p) > 1:
        return "kernel"
    if p[0] == "vmbus" and len(p) > 1 and p[1] not in ("core", "bench"):
        return "vmbus"
    if p[0] == "drivers" and len(p) > 1 and "proto" not in p[2:3]:
        return "drivers"
    return None


def case_of(layer):
    """The KTAP case that reports a file's violations."""
    if layer.startswith(CORE_PREFIX):
        return "core"
    if layer == "kernel-sim":
        return "kernel"
    return layer


def allowed(src, dst):
    """Whether a file of layer src may refer to a module of layer dst."""
    if src in ("root", "sim"):
        return True
    if dst == "root-item":
        return not src.startswith(CORE_PREFIX)
    if src.startswith(CORE_PREFIX):
        return dst == src
    vmbus_core = CORE_PREFIX + "vmbus/core"
    if src == "kernel":
        return dst in ("kernel", vmbus_core)
    if src == "kernel-sim":
        return dst in ("kernel", "kernel-sim", vmbus_core)
    if src == "vmbus":
        return dst in ("kernel", "vmbus", vmbus_core)
    if src == "drivers":
        return dst in ("kernel", "vmbus", "drivers") or dst.startswith(CORE_PREFIX)
    return False


def describe(layer):
    return {
        "root": "the module root",
        "root-item": "an item of the module root",
        "kernel": "rust/",
        "kernel-sim": "the simulator's kernel side (rust/sim/)",
        "vmbus": "vmbus/",
        "drivers": "drivers/",
        "sim": "the simulator and tests",
    }.get(layer, layer[len(CORE_PREFIX):] if layer.startswith(CORE_PREFIX) else layer)


# --- a small Rust lexer: identifiers, `::`, punctuation, string literals ---

TOKEN = re.compile(
    r"""(?P<ws>\s+)
      | (?P<lcomment>//[^\n]*)
      | (?P<bcomment>/\*)
      | (?P<rawstr>(?:b|c)?r(?P<hashes>\#*)")
      | (?P<str>(?:b|c)?"(?:\\.|[^"\\])*")
      | (?P<char>b?'(?:\\(?:x[0-9a-fA-F]{2}|u\{[0-9a-fA-F_]*\}|.)|[^\\'\n])')
      | (?P<lifetime>'[A-Za-z_][A-Za-z0-9_]*)
      | (?P<ident>r\#[A-Za-z_][A-Za-z0-9_]*|[A-Za-z_][A-Za-z0-9_]*)
      | (?P<num>[0-9][0-9A-Za-z_]*)
      | (?P<path>::)
      | (?P<punct>.)""",
    re.S | re.X,
)


class LexError(Exception):
    pass


def lex(text):
    """Tokens (kind, value, line): kinds 'id', 'str', '::', 'p'."""
    newlines = [i for i, c in enumerate(text) if c == "\n"]

    def line(pos):
        return bisect.bisect_right(newlines, pos - 1) + 1

    toks = []
    pos = 0
    n = len(text)
    while pos < n:
        m = TOKEN.match(text, pos)
        kind = m.lastgroup if m.lastgroup != "hashes" else "rawstr"
        if kind == "bcomment":
            depth, i = 1, m.end()
            while depth and i < n:
                if text.startswith("/*", i):
                    depth, i = depth + 1, i + 2
                elif text.startswith("*/", i):
                    depth, i = depth - 1, i + 2
                else:
                    i += 1
            if depth:
                raise LexError("unterminated block comment at line %d" % line(pos))
            pos = i
            continue
        if kind == "rawstr":
            close = '"' + m.group("hashes")
            end = text.find(close, m.end())
            if end < 0:
                raise LexError("unterminated raw string at line %d" % line(pos))
            body = text[m.end():end]
            toks.append(("str", body, line(pos)))
            pos = end + len(close)
            continue
        if kind == "str":
            body = m.group()
            toks.append(("str", body[body.index('"') + 1:-1], line(pos)))
        elif kind == "ident":
            word = m.group()
            if word.startswith("r#"):
                word = word[2:]
            # `$crate` is one path segment.
            if word == "crate" and toks and toks[-1][:2] == ("p", "$"):
                toks[-1] = ("id", "$crate", toks[-1][2])
            else:
                toks.append(("id", word, line(pos)))
        elif kind == "path":
            toks.append(("::", "::", line(pos)))
        elif kind == "punct":
            toks.append(("p", m.group(), line(pos)))
        # whitespace, line comments, chars, lifetimes, numbers: nothing
        pos = m.end()
    return toks


# --- one file: its module declarations and its references ---

class Decl:
    """`mod NAME;` (kind 'file'), `mod NAME { ... }` ('inline') or
    `include!("NAME")` ('include')."""

    def __init__(self, kind, name, nesting, path_attr, line):
        self.kind, self.name, self.nesting = kind, name, nesting
        self.path_attr, self.line = path_attr, line


class Ref:
    """A path as written, with the inline modules it is written in."""

    def __init__(self, segs, nesting, line, in_use):
        self.segs, self.nesting, self.line, self.in_use = segs, nesting, line, in_use


def parse_use_tree(toks, i, prefix, out, nesting):
    """Parses one use tree at toks[i]; appends leaf paths to out."""
    prefix = list(prefix)
    while i < len(toks):
        kind, val, line = toks[i]
        if kind == "::":
            if not prefix:
                prefix.append(("::", line))  # `::name`: an extern crate
            i += 1
        elif (kind, val) == ("p", "{"):
            i += 1
            while i < len(toks) and toks[i][:2] != ("p", "}"):
                i = parse_use_tree(toks, i, prefix, out, nesting)
                if i < len(toks) and toks[i][:2] == ("p", ","):
                    i += 1
            return i + 1
        elif (kind, val) == ("p", "*"):
            out.append(Ref([s for s, _ in prefix] + ["*"], nesting, line, True))
            return i + 1
        elif kind == "id":
            prefix.append((val, line))
            i += 1
            if i < len(toks) and toks[i][0] == "::":
                continue
            if i < len(toks) and toks[i][:2] == ("id", "as"):
                i += 2
            out.append(Ref([s for s, _ in prefix], nesting, prefix[-1][1], True))
            return i
        else:
            # `,`, `}` or `;`: the end of this tree
            if prefix:
                out.append(Ref([s for s, _ in prefix], nesting, prefix[-1][1], True))
            return i
    return i


PATH_STARTS = {"crate", "$crate", "super", "self"}


def scan(toks):
    """Module declarations and references of one file's tokens."""
    decls, refs = [], []
    stack = []  # (inline module name, brace depth inside it)
    depth = 0
    path_attr = None
    i = 0
    n = len(toks)
    while i < n:
        kind, val, line = toks[i]
        nesting = tuple(name for name, _ in stack)
        if (kind, val) == ("p", "#"):
            # `#[path = "..."]` names the file of the next `mod`.
            j = i + 1
            if j < n and toks[j][:2] == ("p", "!"):
                j += 1
            if j + 3 < n and toks[j][:2] == ("p", "[") and toks[j + 1][:2] == ("id", "path") \
                    and toks[j + 2][:2] == ("p", "=") and toks[j + 3][0] == "str":
                path_attr = toks[j + 3][1]
                i = j + 4
                continue
        if (kind, val) == ("p", "{"):
            depth += 1
            path_attr = None
        elif (kind, val) == ("p", "}"):
            if stack and stack[-1][1] == depth:
                stack.pop()
            depth -= 1
            path_attr = None
        elif (kind, val) == ("p", ";"):
            path_attr = None
        elif (kind, val) == ("id", "mod") and i + 2 < n and toks[i + 1][0] == "id":
            name = toks[i + 1][1]
            after = toks[i + 2][:2]
            if after == ("p", ";"):
                decls.append(Decl("file", name, nesting, path_attr, line))
                path_attr = None
                i += 3
                continue
            if after == ("p", "{"):
                decls.append(Decl("inline", name, nesting, path_attr, line))
                path_attr = None
                depth += 1
                stack.append((name, depth))
                i += 3
                continue
        elif (kind, val) == ("id", "include") and i + 3 < n and toks[i + 1][:2] == ("p", "!") \
                and toks[i + 2][:2] == ("p", "(") and toks[i + 3][0] == "str":
            decls.append(Decl("include", toks[i + 3][1], nesting, None, line))
        elif (kind, val) == ("id", "use"):
            j = parse_use_tree(toks, i + 1, [], refs, nesting)
            while j < n and toks[j][:2] != ("p", ";"):
                j += 1
            i = j
            continue
        elif kind == "id" and i + 1 < n and toks[i + 1][0] == "::":
            prev = toks[i - 1][:2] if i else None
            # A continuation (`a::b`), a field or method, or `pub(in path)`.
            if prev and (prev[0] == "::" or prev == ("p", ".")):
                pass
            elif prev == ("id", "in") and i >= 3 and toks[i - 2][:2] == ("p", "(") and toks[i - 3][:2] == ("id", "pub"):
                pass
            else:
                segs = [val]
                j = i + 1
                while j + 1 < n and toks[j][0] == "::" and toks[j + 1][0] == "id":
                    segs.append(toks[j + 1][1])
                    j += 2
                refs.append(Ref(segs, nesting, line, False))
                i = j
                continue
        i += 1
    return decls, refs


# --- the module tree ---

class Tree:
    def __init__(self, root):
        self.root = root
        self.modules = {}   # module path (tuple) -> file (relative path)
        self.files = {}     # file -> (module path, decls, refs)
        self.problems = []  # (file, line, text)
        self.path_decls = []  # (file, line, target file) of #[path] declarations
        self.included = set()  # files pasted in by include!

    def walk(self, rel, modpath, modrs):
        if rel in self.files:
            self.problems.append((rel, 0, "file reached twice (as %s)" % "::".join(("crate",) + modpath)))
            return
        try:
            with open(os.path.join(self.root, rel), encoding="utf-8") as f:
                toks = lex(f.read())
        except (OSError, UnicodeDecodeError, LexError) as e:
            self.problems.append((rel, 0, str(e)))
            return
        decls, refs = scan(toks)
        self.files[rel] = (modpath, decls, refs)
        self.modules[modpath] = rel
        here = os.path.dirname(rel)
        own_dir = here if modrs else os.path.join(here, os.path.splitext(os.path.basename(rel))[0])
        for d in decls:
            if d.kind == "include":
                # Generated code (the bindings), pasted in: not checked.
                self.included.add(os.path.normpath(os.path.join(here, d.name)))
                continue
            path = modpath + d.nesting + (d.name,)
            if d.kind == "inline":
                self.modules[path] = rel
                continue
            if d.path_attr is not None:
                base = here if not d.nesting else os.path.join(own_dir, *d.nesting)
                candidates = [os.path.normpath(os.path.join(base, d.path_attr))]
            else:
                base = os.path.join(own_dir, *d.nesting)
                candidates = [os.path.join(base, d.name + ".rs"), os.path.join(base, d.name, "mod.rs")]
            found = [c for c in candidates if os.path.isfile(os.path.join(self.root, c))]
            if not found:
                self.problems.append((rel, d.line, "mod %s: none of %s exists" % (d.name, ", ".join(candidates))))
                continue
            target = found[0]
            if d.path_attr is not None:
                self.path_decls.append((rel, d.line, target, d.path_attr))
            child_modrs = d.path_attr is not None or os.path.basename(target) == "mod.rs"
            self.walk(target, path, child_modrs)

    def layer_of_path(self, path):
        """The layer of the module (or item) a resolved path names."""
        for k in range(len(path), 0, -1):
            rel = self.modules.get(path[:k])
            if rel is not None:
                return file_layer(rel)
        if path and path[0] in ROOT_ITEMS_FOR_ALL:
            return "root-item"
        return "root"

    def children(self, modpath):
        return {p[-1] for p in self.modules if len(p) == len(modpath) + 1 and p[:-1] == modpath}


def resolve(tree, segs, cur):
    """The crate-absolute path of segs written in module cur, or a reason
    it is none (an extern crate, a name in scope), or an error."""
    first = segs[0]
    if first in ("crate", "$crate"):
        base, rest = (), segs[1:]
    elif first in ("super", "self"):
        base, rest = list(cur), list(segs)
        while rest and rest[0] in ("super", "self"):
            if rest[0] == "super":
                if not base:
                    return None, "super:: goes above the crate root"
                base.pop()
            rest = rest[1:]
        base = tuple(base)
    elif first in tree.children(cur):
        base, rest = cur, segs
    else:
        return None, None  # an extern crate or a name brought into scope
    rest = [s for s in rest if s != "*"]
    if rest and rest[-1] == "self":
        rest = rest[:-1]
    return tuple(base) + tuple(rest), None


def check(root, listing=False):
    tree = Tree(root)
    if not os.path.isfile(os.path.join(root, "rustic.rs")):
        print("KTAP version 1\n1..1\nnot ok 1 module-tree # no rustic.rs in %s" % root)
        return 1
    tree.walk("rustic.rs", (), True)

    violations = {c: [] for c in LAYER_CASES}
    counts = {"use": 0, "inline": 0}
    layer_files = {}
    for rel, (modpath, decls, refs) in sorted(tree.files.items()):
        src = file_layer(rel)
        if src is None:
            tree.problems.append((rel, 0, "in no layer's folder"))
            continue
        layer_files.setdefault(case_of(src), []).append(rel)
        for ref in refs:
            cur = modpath + ref.nesting
            path, err = resolve(tree, ref.segs, cur)
            written = "::".join(ref.segs[:-1] if ref.segs[-1] == "self" else ref.segs)
            if err:
                if case_of(src) in violations:
                    violations[case_of(src)].append("%s:%d: %s: %s" % (rel, ref.line, written, err))
                else:
                    tree.problems.append((rel, ref.line, "%s: %s" % (written, err)))
                continue
            if path is None:
                continue
            counts["use" if ref.in_use else "inline"] += 1
            dst = tree.layer_of_path(path)
            if listing:
                print("# %s:%d: %s -> %s [%s]" % (rel, ref.line, written, "::".join(("crate",) + path), dst))
            if dst is None:
                tree.problems.append((rel, ref.line, "%s: resolves to no layer" % written))
            elif not allowed(src, dst):
                violations[case_of(src)].append("%s:%d: %s (%s may not use %s)" % (
                    rel, ref.line, written, describe(src), describe(dst)))
            elif ref.segs[0] in ("super", "self") and case_of(dst) != case_of(src):
                violations[case_of(src)].append("%s:%d: %s (super:: leaves %s for %s: write crate::)" % (
                    rel, ref.line, written, describe(src), describe(dst)))
    for rel, line, target, attr in tree.path_decls:
        src, dst = file_layer(rel), file_layer(target)
        if src is None:
            continue
        if dst is None:
            tree.problems.append((rel, line, '#[path = "%s"]: %s is in no layer\'s folder' % (attr, target)))
        elif not allowed(src, dst):
            violations[case_of(src)].append('%s:%d: #[path = "%s"] (%s may not use %s)' % (
                rel, line, attr, describe(src), describe(dst)))

    # Files of the layers' folders that no `mod` reaches are not compiled.
    stray = []
    for top in ("rust", "vmbus", "drivers", "tests"):
        for dirpath, dirnames, filenames in os.walk(os.path.join(root, top)):
            dirnames[:] = sorted(d for d in dirnames if d not in ("target", "fuzz"))
            for f in sorted(filenames):
                rel = os.path.relpath(os.path.join(dirpath, f), root).replace(os.sep, "/")
                if f.endswith(".rs") and file_layer(rel) and rel not in tree.files and rel not in tree.included:
                    stray.append(rel)

    missing = [c for c in LAYER_CASES + ["sim"] if not layer_files.get(c)]
    lines = []
    if tree.problems or missing:
        why = ["%s:%d: %s" % p for p in tree.problems] + ["no files in layer %s" % c for c in missing]
        for w in why:
            lines.append("# " + w)
        lines.append(("not ok", "module-tree # " + why[0]))
    else:
        lines.append(("ok", "module-tree"))
    for c in LAYER_CASES:
        if violations[c]:
            for v in violations[c]:
                lines.append(("not ok", "layer-%s # %s" % (c, v)))
        else:
            lines.append(("ok", "layer-%s" % c))

    print("KTAP version 1")
    print("1..%d" % sum(1 for l in lines if isinstance(l, tuple)))
    print("# %d files, %d module references checked (%d in use items, %d inline)" % (
        len(tree.files), counts["use"] + counts["inline"], counts["use"], counts["inline"]))
    for s in stray:
        print("# not in the module (no mod declaration reaches it): %s" % s)
    k = 0
    failed = False
    for l in lines:
        if isinstance(l, str):
            print(l)
            continue
        k += 1
        print("%s %d %s" % (l[0], k, l[1]))
        failed = failed or l[0] == "not ok"
    return 1 if failed else 0


if __name__ == "__main__":
    args = sys.argv[1:]
    listing = "--list" in args
    args = [a for a in args if a != "--list"]
    here = os.path.dirname(os.path.abspath(__file__))
    sys.exit(check(args[0] if args else os.path.normpath(os.path.join(here, "..", "..")), listing))
