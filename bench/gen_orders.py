#!/usr/bin/env python3
# SPDX-License-Identifier: Apache-2.0
"""Emit the benchmark workload of docs/PERFORMANCE.md as SQL on stdout.

Table `orders` (bigint pk, 3 ints, varchar(32), decimal(12,2), char(3),
2 x datetime(6), varchar(255), JSON); TXNS transactions x 1,000 row
changes: 80% inserts (multi-row INSERT, 100 rows/statement), 15% updates,
5% deletes, on disjoint id ranges so every statement touches exactly the
rows it names.  usage: gen_orders.py [TXNS] [--postgres] [--no-ddl]
(--no-ddl: only the DML; print the CREATE TABLE with --ddl-only)
"""
import random
import sys

txns = int(sys.argv[1]) if len(sys.argv) > 1 and sys.argv[1].isdigit() else 1000
pg = "--postgres" in sys.argv
rnd = random.Random(42)
w = sys.stdout.write
json_t = "JSONB" if pg else "JSON"
ddl = ("CREATE TABLE orders (id BIGINT PRIMARY KEY, customer_id INT, qty INT, "
       "status INT, sku VARCHAR(32), amount DECIMAL(12,2), currency CHAR(3), "
       "created_at %s, updated_at %s, note VARCHAR(255), attrs %s);\n"
       % ("TIMESTAMP(6)" if pg else "DATETIME(6)", "TIMESTAMP(6)" if pg else "DATETIME(6)", json_t))
if "--ddl-only" in sys.argv:
    w(ddl)
    sys.exit(0)
if "--no-ddl" not in sys.argv:
    w("DROP TABLE IF EXISTS orders;\n")
    w(ddl)
next_id = 1
for t in range(txns):
    w("BEGIN;\n" if pg else "START TRANSACTION;\n")
    first = next_id
    for s in range(8):
        rows = []
        for r in range(100):
            i = next_id
            next_id += 1
            rows.append("(%d,%d,%d,%d,'SKU-%05d-%s',%d.%02d,'EUR','2026-11-27 08:%02d:%02d.%06d',"
                        "'2026-11-27 09:%02d:%02d.%06d','note %d: customer asked for gift wrapping and "
                        "delivery after 18:00 on weekdays','{\"color\": \"red\", \"size\": %d}')"
                        % (i, rnd.randint(1, 100000), rnd.randint(1, 9), rnd.randint(0, 4),
                           i % 100000, rnd.choice("SMLX"), rnd.randint(1, 99999), rnd.randint(0, 99),
                           i % 60, (i // 60) % 60, i % 1000000, i % 60, (i // 7) % 60,
                           (i * 7) % 1000000, i, i % 50))
        w("INSERT INTO orders VALUES %s;\n" % ",".join(rows))
    # 150 updates: ids first..first+149 of this txn; 50 deletes: next 50
    w("UPDATE orders SET qty = qty + 1, status = 2, amount = amount + 1 "
      "WHERE id BETWEEN %d AND %d;\n" % (first, first + 149))
    w("DELETE FROM orders WHERE id BETWEEN %d AND %d;\n" % (first + 150, first + 199))
    w("COMMIT;\n")
