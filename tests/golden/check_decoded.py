#!/usr/bin/env python3
# SPDX-License-Identifier: Apache-2.0
"""check_decoded.py - golden test for binlog row values.

For every binlog FILE given, runs `autoglm-cdc decode --format autoglm FILE`
and compares every row value of every envelope with the `###` lines of
FILE's `.decoded.txt` (the output of `mariadb-binlog -vv
--print-table-metadata`, recorded when the fixture was made).

mariadb-binlog's rendering is translated to the envelope value rules
(docs/ENVELOPE.md) per column type, which comes from the `# Columns(...)`
lines of the table map:

  integers     "-1 (4294967295)": the value in parentheses for UNSIGNED
  DECIMAL      the same text
  FLOAT        printed with %g: our float32 printed with %g must match
  DOUBLE       printed with %.20g: must read back to our double
  strings      'raw bytes' (bytes < 0x20 as \\xNN), converted from the
               column charset; binary types compared as bytes (base64 in
               the envelope), BINARY(n) padded back to n bytes
  DATE         'YYYY:MM:DD' -> "YYYY-MM-DD"
  TIMESTAMP    epoch seconds[.frac] -> "YYYY-MM-DDTHH:MM:SS[.frac]Z"
               (0 -> the zero literal "0000-00-00 00:00:00[.000]")
  YEAR         1900 is how it prints the zero year -> 0
  ENUM         index -> member ("" for 0)
  SET          b'bits' (bytes in little-endian order) -> member list
  BIT          b'bits' -> number
  GEOMETRY     raw bytes -> {"srid": LE32 of the first 4, "wkb": rest}

Changes are matched by (event offset, row index within the event): the
envelope's source.pos/source.row against the rows event's start offset
in the listing.  Every row in the listing must have an envelope and vice
versa, and an image must hold exactly the columns the listing shows.

Prints the number of compared values and every mismatch (file, event
offset, row, image, column); exits 1 on any mismatch, 0 otherwise.
Python 3 standard library only.
"""
import argparse
import base64
import bisect
import datetime
import json
import re
import struct
import subprocess
import sys

# ---------------------------------------------------------------- listing

RE_HEADER = re.compile(rb"^#\d{6} +\d+:\d\d:\d\d server id \d+ +end_log_pos (\d+)")
RE_AT = re.compile(rb"^# at (\d+)\s*$")
RE_TMAP = re.compile(rb"Table_map: `([^`]*)`\.`([^`]*)` mapped to number (\d+)")
RE_ROWS = re.compile(rb"\t(Write|Update|Delete)_(?:compressed_)?rows(?:_v1)?: "
                     rb"table id (\d+)")
RE_VALUE = re.compile(rb"^###   @(\d+)=(.*)$", re.S)
RE_COMMENT = re.compile(rb" /\* (.*?) meta=(\d+) nullable=(\d) is_null=(\d) \*/$")


def parse_columns(lines):
    """Column specs from the joined '# Columns(...)' block."""
    cols = []
    for i, ln in enumerate(lines):
        s = ln.decode("utf-8", "surrogateescape")
        s = s[len("# Columns("):] if i == 0 else s.lstrip("#").lstrip()
        s = s.rstrip()
        if i == len(lines) - 1:
            s = s[:-1]  # the ')' closing Columns(
        elif s.endswith(","):
            s = s[:-1]
        m = re.match(r"`((?:[^`]|``)*)` (.*)$", s)
        if not m:
            raise ValueError("cannot parse column spec %r" % s)
        cols.append(column_info(m.group(1).replace("``", "`"), m.group(2)))
    return cols


def sql_list(s):
    """'a','b''c' -> ['a', "b'c"] (the member list of ENUM(...)/SET(...))."""
    out, i = [], 0
    while i < len(s):
        if s[i] != "'":
            i += 1
            continue
        j, cur = i + 1, []
        while j < len(s):
            if s[j] == "'" and j + 1 < len(s) and s[j + 1] == "'":
                cur.append("'")
                j += 2
            elif s[j] == "\\" and j + 1 < len(s):
                cur.append(s[j + 1])
                j += 2
            elif s[j] == "'":
                break
            else:
                cur.append(s[j])
                j += 1
        out.append("".join(cur))
        i = j + 1
    return out


def column_info(name, spec):
    m = re.match(r"([A-Z]+)", spec)
    base = m.group(1)
    info = {"name": name, "spec": spec, "base": base,
            "unsigned": " UNSIGNED" in spec, "charset": None, "len": None,
            "fsp": 0, "members": None}
    m = re.search(r"CHARSET (\w+)", spec)
    if m:
        info["charset"] = m.group(1)
    m = re.match(r"[A-Z]+\((\d+)\)", spec)
    if m:
        info["len"] = int(m.group(1))
        info["fsp"] = int(m.group(1))
    if base in ("ENUM", "SET"):
        m = re.search(r"\((.*)\)", spec)
        info["members"] = sql_list(m.group(1))
    return info


def parse_listing(path):
    """[(event start offsets, [change...])] from a mariadb-binlog -vv
    listing: one entry per run of rows events whose rows are printed
    together (the rows of one statement), rows in listing order."""
    with open(path, "rb") as f:
        lines = f.read().split(b"\n")
    starts = []       # every '# at N'
    tables = {}       # table id -> (db, table, columns)
    pending_tmap = None
    groups = []       # [[end_log_pos...], [change...], [table id...]]
    cur = None        # current rows event: [end_log_pos, tid]
    row = None
    target = None
    i = 0
    while i < len(lines):
        ln = lines[i]
        i += 1
        m = RE_AT.match(ln)
        if m:
            starts.append(int(m.group(1)))
            continue
        m = RE_HEADER.match(ln)
        if m:
            end = int(m.group(1))
            t = RE_TMAP.search(ln)
            if t:
                pending_tmap = (t.group(1).decode(), t.group(2).decode(),
                                int(t.group(3)))
                tables[pending_tmap[2]] = (pending_tmap[0], pending_tmap[1],
                                           None)
                cur = None
                continue
            r = RE_ROWS.search(ln)
            if not r:
                cur = None
                continue
            # mariadb-binlog prints the headers of the rows events of one
            # statement first and all their rows after the last header
            if cur is None or groups[-1][1]:
                groups.append([[], [], []])
            groups[-1][0].append(end)
            groups[-1][2].append(int(r.group(2)))
            cur = [end, int(r.group(2))]
            continue
        if ln.startswith(b"# Columns("):
            block = [ln]
            while i < len(lines) and re.match(rb"^# +`", lines[i]):
                block.append(lines[i])
                i += 1
            db, tb, tid = pending_tmap
            tables[tid] = (db, tb, parse_columns(block))
            continue
        if not ln.startswith(b"###"):
            continue
        if cur is None:
            raise ValueError("%s:%d: row outside a rows event" % (path, i))
        for kw, op, tgt in ((b"### INSERT INTO ", "c", "after"),
                            (b"### UPDATE ", "u", None),
                            (b"### DELETE FROM ", "d", "before")):
            if ln.startswith(kw):
                # a multi-table statement prints several tables' rows after
                # one run of headers: take the table named in this line
                tid = cur[1]
                m = re.search(rb"`([^`]*)`\.`([^`]*)`", ln)
                for t in groups[-1][2]:
                    if m and tables[t][:2] == (m.group(1).decode(),
                                               m.group(2).decode()):
                        tid = t
                db, tb, cols = tables[tid]
                row = {"op": op, "db": db, "table": tb, "cols": cols,
                       "before": None, "after": None, "line": i}
                groups[-1][1].append(row)
                target = tgt
                break
        else:
            if ln == b"### WHERE":
                target = "before"
            elif ln == b"### SET":
                target = "after"
            else:
                m = RE_VALUE.match(ln)
                if not m:
                    raise ValueError("%s:%d: cannot parse %r" % (path, i, ln[:80]))
                c = RE_COMMENT.search(m.group(2))
                if not c:
                    raise ValueError("%s:%d: no type comment" % (path, i))
                raw = m.group(2)[:c.start()]
                img = row[target]
                if img is None:
                    img = row[target] = {}
                img[int(m.group(1))] = (raw, c.group(1).decode(),
                                        c.group(4) == b"1")
    starts.sort()
    out = []
    for ends, rows, _ in groups:
        evs = [starts[bisect.bisect_left(starts, e) - 1] for e in ends]
        out.append((evs, rows))
    return out

# ------------------------------------------------------------- conversion


def unquote(raw):
    """'...' with \\xNN escapes -> bytes."""
    raw = raw.rstrip()
    if len(raw) < 2 or raw[:1] != b"'" or raw[-1:] != b"'":
        raise ValueError("not a quoted value: %r" % raw[:40])
    return re.sub(rb"\\x([0-9a-fA-F]{2})",
                  lambda m: bytes([int(m.group(1), 16)]), raw[1:-1])


# MySQL latin1 = cp1252 with the five undefined bytes as C1 controls
CP1252_HOLES = {0x81, 0x8D, 0x8F, 0x90, 0x9D}


def latin1_mysql(b):
    return "".join(chr(c) if c in CP1252_HOLES else bytes([c]).decode("cp1252")
                   for c in b)


def text_of(b, charset):
    if charset in ("utf8mb4", "utf8mb3", "utf8", "ascii"):
        return b.decode("utf-8")
    if charset == "latin1":
        return latin1_mysql(b)
    if charset == "ucs2" or charset == "utf16":
        return b.decode("utf-16-be")
    if charset == "utf16le":
        return b.decode("utf-16-le")
    if charset == "utf32":
        return b.decode("utf-32-be")
    raise ValueError("charset %s not handled by the checker" % charset)


BINARY_BASES = {"BINARY", "VARBINARY", "TINYBLOB", "BLOB", "MEDIUMBLOB",
                "LONGBLOB"}
TEXT_BASES = {"CHAR", "VARCHAR", "TINYTEXT", "TEXT", "MEDIUMTEXT", "LONGTEXT"}
INT_BASES = {"TINYINT", "SMALLINT", "MEDIUMINT", "INT", "BIGINT"}
GEOM_BASES = {"GEOMETRY", "POINT", "LINESTRING", "POLYGON", "MULTIPOINT",
              "MULTILINESTRING", "MULTIPOLYGON", "GEOMETRYCOLLECTION"}


def is_int(v):
    return isinstance(v, int) and not isinstance(v, bool)


def compare(col, raw, tcomment, ours):
    """None if equal, else a description of the difference."""
    base = col["base"]
    raw = raw.rstrip()

    def diff(expected):
        return "expected %s, got %s" % (short(expected), short(ours))

    if base in INT_BASES:
        m = re.match(rb"^(-?\d+)(?: \((\d+)\))?$", raw)
        exp = int(m.group(2) if (col["unsigned"] and m.group(2)) else m.group(1))
        return None if is_int(ours) and ours == exp else diff(exp)
    if base == "DECIMAL":
        exp = raw.decode()
        return None if ours == exp else diff(exp)
    if base == "FLOAT":
        if not isinstance(ours, (int, float)) or isinstance(ours, bool):
            return diff(raw.decode())
        f32 = struct.unpack("<f", struct.pack("<f", float(ours)))[0]
        got = "%g" % f32
        return None if got == raw.decode() else diff(raw.decode() + " (%g)")
    if base == "DOUBLE":
        exp = float(raw)
        ok = isinstance(ours, (int, float)) and not isinstance(ours, bool) \
            and float(ours) == exp
        return None if ok else diff(exp)
    if base == "YEAR":
        exp = int(raw)
        exp = 0 if exp == 1900 else exp
        return None if is_int(ours) and ours == exp else diff(exp)
    if base == "DATE":
        exp = unquote(raw).decode().replace(":", "-")
        return None if ours == exp else diff(exp)
    if base in ("TIME", "DATETIME"):
        exp = unquote(raw).decode()
        return None if ours == exp else diff(exp)
    if base == "TIMESTAMP":
        s = raw.decode()
        sec, _, frac = s.partition(".")
        fsp = col["fsp"]
        if int(sec) == 0 and frac.strip("0") == "":
            exp = "0000-00-00 00:00:00" + ("." + "0" * fsp if fsp else "")
        else:
            t = datetime.datetime(1970, 1, 1) + datetime.timedelta(seconds=int(sec))
            exp = t.strftime("%Y-%m-%dT%H:%M:%S") + ("." + frac if frac else "") + "Z"
        return None if ours == exp else diff(exp)
    if base in BINARY_BASES or (base in TEXT_BASES and col["charset"] is None):
        exp = unquote(raw)
        if base == "BINARY" and col["len"] and len(exp) < col["len"]:
            exp = exp + b"\0" * (col["len"] - len(exp))
        try:
            got = base64.b64decode(ours, validate=True) if isinstance(ours, str) else None
        except ValueError:
            got = None
        return None if got == exp else diff(exp)
    if base in TEXT_BASES:
        exp = text_of(unquote(raw), col["charset"])
        return None if ours == exp else diff(exp)
    if base == "ENUM":
        idx = int(raw)
        exp = "" if idx == 0 else col["members"][idx - 1]
        return None if ours == exp else diff(exp)
    if base == "SET":
        # printed byte by byte in storage (little-endian) order
        s = re.match(rb"^b'([01]*)'$", raw).group(1).decode()
        bits = sum(int(s[i:i + 8], 2) << i for i in range(0, len(s), 8))
        exp = [m for i, m in enumerate(col["members"]) if bits >> i & 1]
        return None if ours == exp else diff(exp)
    if base == "BIT":
        exp = int(re.match(rb"^b'([01]*)'$", raw).group(1), 2)
        return None if is_int(ours) and ours == exp else diff(exp)
    if base in GEOM_BASES:
        b = unquote(raw)
        exp = {"srid": struct.unpack("<I", b[:4])[0],
               "wkb": base64.b64encode(b[4:]).decode()}
        return None if ours == exp else diff(exp)
    return "column type %s (%s) not handled by the checker" % (base, tcomment)


def short(v):
    s = repr(v)
    return s if len(s) <= 120 else s[:100] + "...(%d chars)" % len(s)

# ------------------------------------------------------------------ main


def run_decode(binary, path):
    p = subprocess.run([binary, "decode", "--format", "autoglm", path],
                       stdout=subprocess.PIPE, stderr=subprocess.PIPE)
    if p.returncode != 0:
        raise RuntimeError("%s decode %s: exit %d\n%s" % (
            binary, path, p.returncode, p.stderr.decode(errors="replace")))
    out = []
    for n, line in enumerate(p.stdout.decode("utf-8").splitlines(), 1):
        if line.strip():
            try:
                out.append(json.loads(line))
            except ValueError as e:
                raise RuntimeError("%s: output line %d is not JSON: %s"
                                   % (path, n, e))
    return out


def check_file(binary, path, stats, mismatches):
    listing_path = re.sub(r"\.binlog$", "", path) + ".decoded.txt"
    groups = parse_listing(listing_path)
    got = {}
    name = path.rsplit("/", 1)[-1]
    for env in run_decode(binary, path):
        src = env.get("source", {})
        key = (src.get("pos"), src.get("row"))
        if key in got:
            mismatches.append("%s pos=%s row=%s: duplicate envelope" % (name, *key))
        got[key] = env

    def bad(key, what):
        mismatches.append("%s pos=%s row=%s: %s" % (name, key[0], key[1], what))

    # pair the listing's rows with the envelopes of the same rows events,
    # both in file order
    pairs = []
    seen = set()
    for evs, rows in groups:
        mine = sorted(k for k in got if k[0] in evs)
        seen.update(mine)
        if len(mine) != len(rows):
            bad((evs[0], "*"), "%d rows in the listing (events at %s, listing "
                "line %d), %d envelopes" % (len(rows), evs, rows[0]["line"]
                                            if rows else 0, len(mine)))
        for i, ch in enumerate(rows):
            pairs.append((mine[i] if i < len(mine) else (evs[-1], "?"), ch))
    for key in sorted(set(got) - seen, key=lambda k: (k[0] or 0, k[1] or 0)):
        bad(key, "envelope without a row in the listing (op %s)"
            % got[key].get("payload", {}).get("op"))
    for key, ch in pairs:
        env = got.get(key)
        if env is None:
            continue
        pl = env.get("payload", {})
        src = env.get("source", {})
        stats["rows"] += 1
        if pl.get("op") != ch["op"]:
            bad(key, "op %r, expected %r" % (pl.get("op"), ch["op"]))
        if src.get("db") != ch["db"] or src.get("table") != ch["table"]:
            bad(key, "table %s.%s, expected %s.%s" % (src.get("db"),
                src.get("table"), ch["db"], ch["table"]))
        for img in ("before", "after"):
            exp_img, our_img = ch[img], pl.get(img)
            if exp_img is None:
                if our_img is not None:
                    bad(key, "%s: expected no image, got one" % img)
                continue
            if not isinstance(our_img, dict):
                bad(key, "%s: image missing" % img)
                continue
            cols = ch["cols"]
            if cols is None:
                bad(key, "no '# Columns' metadata in the listing")
                continue
            names = {cols[n - 1]["name"] for n in exp_img}
            for extra in sorted(set(our_img) - names):
                bad(key, "%s.%s: column not in the row image, got %s"
                    % (img, extra, short(our_img[extra])))
            for n, (raw, tcomment, is_null) in sorted(exp_img.items()):
                col = cols[n - 1]
                stats["values"] += 1
                if col["name"] not in our_img:
                    bad(key, "%s.%s (@%d): missing" % (img, col["name"], n))
                    continue
                ours = our_img[col["name"]]
                if is_null:
                    why = None if ours is None else "expected null, got %s" % short(ours)
                else:
                    try:
                        why = compare(col, raw, tcomment, ours)
                    except Exception as e:  # a checker problem is a failure too
                        why = "checker error: %s: %s" % (type(e).__name__, e)
                if why:
                    bad(key, "%s.%s (@%d %s): %s" % (img, col["name"], n,
                                                     col["spec"][:40], why))


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--bin", required=True, help="path of autoglm-cdc")
    ap.add_argument("--min-values", type=int, default=1,
                    help="fail unless at least this many values were compared in all")
    ap.add_argument("files", nargs="+", help="binlog fixtures (.binlog)")
    args = ap.parse_args()
    stats = {"rows": 0, "values": 0}
    mismatches = []
    for path in args.files:
        before = stats["values"]
        try:
            check_file(args.bin, path, stats, mismatches)
        except (RuntimeError, ValueError, OSError) as e:
            mismatches.append("%s: %s" % (path, e))
        # a file whose listing or decode yields nothing proves nothing
        if stats["values"] == before:
            mismatches.append("%s: no values compared" % path)
    if stats["values"] < args.min_values:
        mismatches.append("compared only %d values, fewer than --min-values %d"
                          % (stats["values"], args.min_values))
    for m in mismatches:
        print("MISMATCH " + m)
    print("compared %d values in %d row changes of %d files: %d mismatches"
          % (stats["values"], stats["rows"], len(args.files), len(mismatches)))
    return 1 if mismatches else 0


if __name__ == "__main__":
    sys.exit(main())
