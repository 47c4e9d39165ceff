"""The engine's layering (issue 12): each SwiftPM target of the engine imports only the layers below it.

The compiler already rejects an import that closes a cycle; this test also catches an import of a layer
that is not a declared dependency (which SwiftPM may let through when the module happens to be built),
and pins the layer order README and Sources/SAMix/SAMix.swift describe.
"""
import os
import re

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
LAYERS = ["SAMixCore", "SAMixOps", "SAMixNN", "SAMixData", "SAMixMixing", "SAMixTraining"]


def package_dependencies():
    """target name → its declared dependencies, read from Package.swift."""
    text = open(os.path.join(ROOT, "Package.swift")).read()
    deps = {}
    for m in re.finditer(r'\.(?:target|executableTarget|testTarget)\(\s*name:\s*"([^"]+)"\s*,\s*dependencies:\s*\[(.*?)\]',
                         text, re.S):
        deps[m.group(1)] = re.findall(r'"([^"]+)"', m.group(2))
    return deps


def closure(deps, target):
    seen, todo = set(), list(deps.get(target, []))
    while todo:
        d = todo.pop()
        if d not in seen:
            seen.add(d)
            todo += deps.get(d, [])
    return seen


def imports_of(target):
    out = []
    for folder, _, files in os.walk(os.path.join(ROOT, "Sources", target)):
        for f in files:
            if f.endswith(".swift"):
                path = os.path.join(folder, f)
                for line in open(path, encoding="utf-8"):
                    m = re.match(r"\s*(?:@_exported\s+|@testable\s+)?import\s+(\w+)", line)
                    if m:
                        out.append((os.path.relpath(path, ROOT), m.group(1)))
    return out


def test_each_layer_depends_only_on_the_one_below():
    deps = package_dependencies()
    for i, layer in enumerate(LAYERS):
        engine_deps = [d for d in deps[layer] if d.startswith("SAMix")]
        assert engine_deps == LAYERS[i - 1:i], f"{layer} depends on {engine_deps}, expected {LAYERS[i - 1:i]}"


def test_no_source_imports_a_layer_it_does_not_depend_on():
    deps = package_dependencies()
    engine_modules = set(LAYERS) | {"SAMix"}
    bad = []
    for target in LAYERS + ["SAMix", "SAMixCAPI", "samix-bench"]:
        allowed = closure(deps, target)
        for path, module in imports_of(target):
            if module in engine_modules and module not in allowed:
                bad.append(f"{path} imports {module}")
    assert not bad, "upward or undeclared imports:\n" + "\n".join(bad)


def test_front_ends_see_the_engine_only_through_the_umbrella():
    """The C ABI and the CLI import `SAMix` (marshalling over the whole engine), never a layer directly."""
    for target in ("SAMixCAPI", "samix-bench"):
        layers = sorted({m for _, m in imports_of(target) if m in LAYERS})
        assert not layers, f"{target} imports {layers} directly"


def test_umbrella_reexports_every_layer():
    text = open(os.path.join(ROOT, "Sources", "SAMix", "SAMix.swift")).read()
    assert re.findall(r"@_exported import (\w+)", text) == LAYERS
