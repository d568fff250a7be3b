"""``otelgate audit verify [PATH...] [--key-file F] [--head HASH] [--partial] [-c CONFIG]``.

Exit status: 0 the chain holds, 1 it is broken (the first bad entry is named), 2 it could not
be checked (no such file, unusable key, an HMAC trail without its key).
"""

from __future__ import annotations

import argparse
import os
import sys
from pathlib import Path

from gateway.audit.config import AuditConfig, load_key
from gateway.audit.files import rotated_files
from gateway.audit.verify import VerifyResult, verify


def add_audit_parser(commands: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    """Add ``audit verify`` to the ``otelgate`` command's subcommands."""
    audit = commands.add_parser("audit", help="the tamper-evident audit trail")
    actions = audit.add_subparsers(dest="audit_command", required=True)
    check = actions.add_parser(
        "verify",
        help="check the audit trail's hash chain",
        description="Check every link of an audit trail; name the first broken entry.",
    )
    check.add_argument(
        "paths", nargs="*", type=Path, metavar="PATH",
        help="trail files or directories (their *.jsonl files), in any order; "
        "default: the trail of --config's audit section",
    )  # fmt: skip
    check.add_argument("--key-file", type=Path, help="the HMAC key file (audit.hmac_key_file)")
    check.add_argument(
        "--head", metavar="HASH", help="a hash taken earlier that must still be in the trail"
    )
    check.add_argument(
        "--partial", action="store_true", help="accept a trail whose beginning is not given"
    )
    check.add_argument("--config", "-c", type=str, help="YAML configuration with an audit section")
    check.set_defaults(func=run_verify)


def run_verify(args: argparse.Namespace) -> int:
    """The ``audit verify`` command; prints the verdict, returns the exit status."""
    try:
        paths, key_file = _what_to_verify(args)
        key = None if key_file is None else load_key(key_file, warn=False)
        result = verify(paths, key=key, head=args.head, partial=args.partial)
    except (ValueError, OSError) as exc:
        print(f"otelgate: {exc}", file=sys.stderr)
        return 2
    return _report(result)


def _report(result: VerifyResult) -> int:
    count = len(result.files)
    files = f"{count} file{'' if count == 1 else 's'}"
    if result.problem is not None:
        print(f"BROKEN: {result.problem}")
        code = 1
    elif result.needs_key is not None:
        print(f"UNVERIFIED: {result.needs_key}")
        print(f"  {result.entries} entries in {files} read; their order and seq are intact")
        code = 2
    else:
        print(f"OK: {result.entries} entries in {files}, head {result.head}")
        code = 0
    for note in result.notes:
        print(f"  note: {note}")
    return code


def _what_to_verify(args: argparse.Namespace) -> tuple[list[Path], Path | None]:
    key_file: Path | None = args.key_file
    if args.paths:
        return list(args.paths), key_file
    config = _audit_config(args.config or os.environ.get("OTELGATE_CONFIG"))
    active = config.resolved_path()
    paths = [path for _, path in rotated_files(active)]
    if active.exists():
        paths.append(active)
    if not paths:
        raise FileNotFoundError(f"{active}: no audit trail here")
    if key_file is None and config.hmac_key_file:
        key_file = Path(config.hmac_key_file)
    return paths, key_file


def _audit_config(config_path: str | None) -> AuditConfig:
    if not config_path:
        raise ValueError("give the audit files to verify (PATH...) or a --config with audit:")
    from gateway.config.issues import ConfigError
    from gateway.config.loading import load_config
    from gateway.config.overrides import apply_env_overrides

    try:
        config = apply_env_overrides(load_config(config_path), os.environ)
    except ConfigError as exc:
        raise ValueError(f"invalid configuration:\n{exc}") from None
    audit = getattr(config, "audit", None)
    if not isinstance(audit, AuditConfig) or not audit.enabled:
        raise ValueError(f"{config_path} has no enabled audit section: give PATH...")
    return audit
