#!/usr/bin/env python3
"""Summarize a CSV of sales transactions by region and month.

Expected columns: date, region, product, units, unit_price
"""
import argparse
import csv
import sys
from collections import defaultdict
from datetime import datetime
from decimal import Decimal, InvalidOperation
from pathlib import Path


REQUIRED_COLUMNS = {"date", "region", "product", "units", "unit_price"}


def parse_row(row, line_no):
    try:
        date = datetime.strptime(row["date"].strip(), "%Y-%m-%d").date()
        units = int(row["units"])
        price = Decimal(row["unit_price"])
    except (ValueError, InvalidOperation) as exc:
        raise ValueError(f"line {line_no}: {exc}") from exc
    return {
        "month": date.strftime("%Y-%m"),
        "region": row["region"].strip() or "UNKNOWN",
        "product": row["product"].strip(),
        "revenue": price * units,
        "units": units,
    }


def load_rows(path, strict=False):
    with open(path, newline="", encoding="utf-8") as fh:
        reader = csv.DictReader(fh)
        missing = REQUIRED_COLUMNS - set(reader.fieldnames or [])
        if missing:
            raise SystemExit(f"{path}: missing columns {sorted(missing)}")
        for line_no, row in enumerate(reader, start=2):
            try:
                yield parse_row(row, line_no)
            except ValueError as exc:
                if strict:
                    raise
                print(f"warning: skipping {exc}", file=sys.stderr)


def summarize(rows):
    by_region_month = defaultdict(lambda: {"units": 0, "revenue": Decimal(0)})
    top_products = defaultdict(Decimal)
    for r in rows:
        bucket = by_region_month[(r["region"], r["month"])]
        bucket["units"] += r["units"]
        bucket["revenue"] += r["revenue"]
        top_products[r["product"]] += r["revenue"]
    return by_region_month, top_products


def write_report(summary, products, out, top_n=5):
    writer = csv.writer(out)
    writer.writerow(["region", "month", "units", "revenue"])
    for (region, month), agg in sorted(summary.items()):
        writer.writerow([region, month, agg["units"], f"{agg['revenue']:.2f}"])

    out.write("\n")
    writer.writerow(["rank", "product", "revenue"])
    ranked = sorted(products.items(), key=lambda kv: kv[1], reverse=True)
    for rank, (product, revenue) in enumerate(ranked[:top_n], start=1):
        writer.writerow([rank, product, f"{revenue:.2f}"])


def build_parser():
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("inputs", nargs="+", type=Path, help="CSV files to read")
    p.add_argument("-o", "--output", type=Path, help="write report here (default: stdout)")
    p.add_argument("--top", type=int, default=5, help="number of top products to list")
    p.add_argument("--strict", action="store_true", help="fail on malformed rows")
    return p


def main(argv=None):
    args = build_parser().parse_args(argv)
    rows = []
    for path in args.inputs:
        if not path.exists():
            print(f"error: {path} does not exist", file=sys.stderr)
            return 2
        rows.extend(load_rows(path, strict=args.strict))

    if not rows:
        print("no data", file=sys.stderr)
        return 1

    summary, products = summarize(rows)
    if args.output:
        with open(args.output, "w", newline="", encoding="utf-8") as out:
            write_report(summary, products, out, top_n=args.top)
    else:
        write_report(summary, products, sys.stdout, top_n=args.top)
    return 0


if __name__ == "__main__":
    sys.exit(main())
