"""Fails unless every public op declared in the headers ops/ops.h includes has conformance cases (a Suite.case whose op, or
the part of it before a dot, is the op's name) or is listed in not_covered.txt with its reason.
Also fails on a not_covered.txt entry that names no op, or one that has cases after all.

Usage: coverage.py <source root>"""
import pathlib
import re
import sys

root = pathlib.Path(sys.argv[1])
here = root / "tests" / "conformance"

# A declaration at the start of a line inside namespace weft (not detail): a return type (a
# capitalised name such as Tensor or TensorList, a std:: type, or void), a name, and a parenthesis. Templates and overloads count once.
DECLARATION = re.compile(r"^(?:inline\s+)?(?:[A-Z]\w*|std::[\w:<>, ]+?|void)&?\s+(\w+)\(")

ops = {}
public = re.findall(r'#include "ops/(\w+\.h)"', (root / "ops" / "ops.h").read_text())  # what users include
for header in sorted(root / "ops" / h for h in public):
    depth_detail = 0
    for line in header.read_text().splitlines():
        if re.match(r"^namespace (detail|internal)\b", line):
            depth_detail += 1
        elif depth_detail and re.match(r"^}\s*//\s*namespace (detail|internal)", line):
            depth_detail -= 1
        elif not depth_detail:
            m = DECLARATION.match(line)
            if m and not m.group(1).startswith("operator"):
                ops.setdefault(m.group(1), header.name)

covered = set()
for script in here.glob("*.py"):
    for m in re.finditer(r"""\.case\(\s*["']([\w.]+)["']""", script.read_text()):
        covered.add(m.group(1).split(".")[0])

exempt = {}
for line in (here / "not_covered.txt").read_text().splitlines():
    line = line.strip()
    if line and not line.startswith("#"):
        name, _, reason = line.partition(":")
        exempt[name.strip()] = reason.strip()

problems = []
for op, header in sorted(ops.items()):
    if op not in covered and op not in exempt:
        problems.append("ops/%s declares %s: no conformance case and no reason in not_covered.txt" % (header, op))
for op, reason in sorted(exempt.items()):
    if not reason:
        problems.append("not_covered.txt lists %s without a reason" % op)
    if op not in ops:
        problems.append("not_covered.txt lists %s, which ops/*.h does not declare" % op)
    elif op in covered:
        problems.append("not_covered.txt lists %s, which has conformance cases" % op)

print("%d public ops: %d with cases, %d exempt with a reason" % (len(ops), len(ops.keys() & covered), len(ops.keys() & exempt.keys())))
for p in problems:
    print(p)
sys.exit(1 if problems else 0)
