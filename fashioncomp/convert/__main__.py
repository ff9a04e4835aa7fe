"""`python -m fashioncomp.convert NAME SRC DST [options] [--force]`: see fashioncomp.convert."""
from __future__ import annotations

import argparse

from fashioncomp.cli import run_cli
from fashioncomp.convert import CONVERTERS, convert


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="python -m fashioncomp.convert",
                                     description="Convert another dataset's files into this project's layout "
                                                 "(train.csv, test.csv, schema.json; images linked, not copied).")
    sub = parser.add_subparsers(dest="converter", required=True, metavar="NAME")
    for converter in CONVERTERS.values():
        command = sub.add_parser(converter.name, help=converter.summary, description=converter.summary)
        command.add_argument("src", metavar="SRC", help="the source dataset's folder (only read)")
        command.add_argument("dst", metavar="DST", help="the folder to write the converted dataset into")
        command.add_argument("--force", action="store_true",
                             help="replace another dataset in DST (its train.csv, test.csv, schema.json, image links)")
        for option in converter.options:
            # defaults stay with the converter (None here = not given), so Python and CLI share them
            command.add_argument(option.flag, dest=option.name, metavar=option.name.upper(), default=None,
                                 choices=option.choices or None, required=option.required, help=option.help)
    return parser


def main(argv: list[str] | None = None) -> int:
    args = vars(build_parser().parse_args(argv))
    name, src, dst, force = args.pop("converter"), args.pop("src"), args.pop("dst"), args.pop("force")
    options = {key: value for key, value in args.items() if value is not None}
    return run_cli(lambda: convert(name, src, dst, force=force, **options))


if __name__ == "__main__":
    raise SystemExit(main())
