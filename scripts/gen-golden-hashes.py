#!/usr/bin/env python3
"""Golden hash vectors for the vault tests (vault/tests/data/golden-hashes.tsv), computed independently of
Playlog's SQL with Python's hashlib, following AutomateDV's standardisation: UPPER(TRIM(x)), '' as NULL,
'^^' for NULL, '||' between columns, an all-NULL key is NULL, hashdiff columns sorted by name."""
import hashlib
import sys

NULL = "\\N"


def std(x):
    if x is None:
        return None
    s = str(x).strip().upper()
    return s if s != "" else None


def placeholder(x):
    s = std(x)
    return "^^" if s is None else s


def key(*cols):
    if len(cols) == 1:
        s = std(cols[0])
        return None if s is None else hashlib.md5(s.encode()).hexdigest()
    joined = "||".join(placeholder(c) for c in cols)
    if joined == "||".join(["^^"] * len(cols)):
        return None
    return hashlib.md5(joined.encode()).hexdigest()


def hashdiff(named):
    return hashlib.md5("||".join(placeholder(v) for _, v in sorted(named.items())).encode()).hexdigest()


def show(x):
    return NULL if x is None else x


keys = [["42"], ["  42 "], ["Björk"], ["Sigur Rós", "Hoppípolla"], ["", "x"], [None, None], [""],
        ["Cancellation Confirmation"], ["O'Brien"]]
diffs = [{"zip": "02134", "city": "Boston", "state": "MA"}, {"level": "paid"},
         {"first_name": "Ada", "last_name": None, "gender": "F"}]
out = sys.stdout
out.write("# kind\tcolumns (| between; \\N is NULL; hashdiff columns as name=value)\tmd5 hex (\\N is NULL)\n")
for cols in keys:
    out.write("key\t" + "|".join(show(c) for c in cols) + "\t" + show(key(*cols)) + "\n")
for named in diffs:
    out.write("hashdiff\t" + "|".join(k + "=" + show(v) for k, v in named.items()) + "\t" + hashdiff(named) + "\n")
