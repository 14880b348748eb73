#!/usr/bin/env python3
"""Check that `sam build` produced a bootstrap for every AWS::Serverless::Function.

Run by `make sam-build` with the tools venv's Python (PyYAML comes with cfn-lint/sam):

    check_build.py --template template.yaml --build-dir .aws-sam/build --goarch arm64

Each function must have <build-dir>/<LogicalId>/bootstrap: a regular, executable
64-bit Linux ELF file for --goarch. Exits 1 listing every function that does not.
"""

import argparse
import os
import sys

import yaml

# ELF e_machine values of the architectures a Lambda can run on.
ELF_MACHINE = {"arm64": 183, "amd64": 62}


class TemplateLoader(yaml.SafeLoader):
    """SafeLoader that accepts CloudFormation short-form tags (!Ref, !GetAtt, !Sub, ...)."""


def _any_tag(loader, _suffix, node):
    if isinstance(node, yaml.ScalarNode):
        return loader.construct_scalar(node)
    if isinstance(node, yaml.SequenceNode):
        return loader.construct_sequence(node, deep=True)
    return loader.construct_mapping(node, deep=True)


TemplateLoader.add_multi_constructor("!", _any_tag)


def elf_problem(path, goarch):
    with open(path, "rb") as f:
        header = f.read(20)
    if len(header) < 20 or header[:4] != b"\x7fELF":
        return "is not an ELF binary"
    if header[4] != 2:
        return "is not a 64-bit ELF binary"
    order = "little" if header[5] == 1 else "big"
    machine = int.from_bytes(header[18:20], order)
    want = ELF_MACHINE.get(goarch)
    if want is not None and machine != want:
        got = {v: k for k, v in ELF_MACHINE.items()}.get(machine, f"e_machine {machine}")
        return f"is built for {got}, want {goarch}"
    return None


def main():
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--template", default="template.yaml")
    ap.add_argument("--build-dir", default=".aws-sam/build")
    ap.add_argument("--goarch", default="arm64")
    args = ap.parse_args()

    with open(args.template) as f:
        template = yaml.load(f, Loader=TemplateLoader) or {}
    functions = sorted(
        name
        for name, res in (template.get("Resources") or {}).items()
        if isinstance(res, dict) and res.get("Type") == "AWS::Serverless::Function"
    )
    if not functions:
        print(f"check_build: no AWS::Serverless::Function in {args.template}", file=sys.stderr)
        return 1

    problems = []
    for name in functions:
        path = os.path.join(args.build_dir, name, "bootstrap")
        if not os.path.isfile(path):
            problems.append(f"{path}: missing")
        elif not os.access(path, os.X_OK):
            problems.append(f"{path}: not executable")
        else:
            problem = elf_problem(path, args.goarch)
            if problem:
                problems.append(f"{path}: {problem}")

    if problems:
        print("check_build: sam build is incomplete:", file=sys.stderr)
        for p in problems:
            print("  " + p, file=sys.stderr)
        return 1
    print(f"check_build: {len(functions)} function(s) have a linux/{args.goarch} bootstrap: {', '.join(functions)}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
