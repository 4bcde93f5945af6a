"""The cases every platform matcher of rules_image must agree on.

Two matchers choose an image of an index for a wanted platform, and they must choose alike:

| matcher | where | used by |
| --- | --- | --- |
| `select_platform` | `rules/private/platform.bzl` | `image_manifest` (`base` that is an index) |
| `Platform::select` | `tools/src/oci/platform.rs` | `import --platform`, `pull --platform`, `load --platform`, the tarball's tagged image |

Both read this list in their tests (`rules/tests/platform_test.bzl`, `cargo test`), so the
rules cannot drift apart. The tool's test reads the JSON between `json.decode(` and `)` below
as data: keep it plain JSON.

The rules, in both matchers:

- os and architecture must be equal;
- a missing variant is the architecture's default one: amd64 `v1`, arm64 `v8`, arm `v7`;
- a wanted variant also accepts images for older variants of the same architecture, the
  newest first: amd64 `v3` takes `v3`, then `v2`, then `v1`; arm `v7` takes `v7`, `v6`, `v5`;
  never a newer one (the CPU could not run it);
- among equally good images, the first in index order wins;
- attestation entries (`unknown/unknown`) and entries without os or architecture never match.

Each case: `candidates` (the index's platforms, `os/architecture[/variant]`), `want`, and
`pick`, the position the matcher must return (`null`: no image fits).
"""

visibility(["//rules/..."])

PLATFORM_CASES = json.decode("""
[
  {"candidates": ["linux/amd64", "linux/arm64/v8"], "want": "linux/amd64", "pick": 0},
  {"candidates": ["linux/amd64", "linux/arm64/v8"], "want": "linux/arm64", "pick": 1},
  {"candidates": ["linux/amd64", "linux/arm64/v8"], "want": "linux/arm64/v8", "pick": 1},
  {"candidates": ["linux/amd64", "linux/arm64"], "want": "linux/arm64/v8", "pick": 1},
  {"candidates": ["linux/amd64", "linux/arm64"], "want": "linux/amd64/v1", "pick": 0},
  {"candidates": ["linux/amd64/v1", "linux/arm64"], "want": "linux/amd64", "pick": 0},
  {"candidates": ["linux/amd64/v2"], "want": "linux/amd64", "pick": null},
  {"candidates": ["linux/amd64/v2"], "want": "linux/amd64/v1", "pick": null},
  {"candidates": ["linux/amd64/v2", "linux/amd64/v3"], "want": "linux/amd64/v3", "pick": 1},
  {"candidates": ["linux/amd64/v2", "linux/amd64/v3"], "want": "linux/amd64/v4", "pick": 1},
  {"candidates": ["linux/amd64", "linux/amd64/v3"], "want": "linux/amd64/v2", "pick": 0},
  {"candidates": ["linux/arm/v6", "linux/arm/v7"], "want": "linux/arm/v7", "pick": 1},
  {"candidates": ["linux/arm/v6", "linux/arm/v7"], "want": "linux/arm", "pick": 1},
  {"candidates": ["linux/arm/v6"], "want": "linux/arm/v7", "pick": 0},
  {"candidates": ["linux/arm/v7"], "want": "linux/arm/v6", "pick": null},
  {"candidates": ["linux/arm"], "want": "linux/arm/v7", "pick": 0},
  {"candidates": ["linux/arm64/v8", "linux/arm64"], "want": "linux/arm64", "pick": 0},
  {"candidates": ["unknown/unknown", "linux/amd64"], "want": "linux/amd64", "pick": 1},
  {"candidates": ["unknown/unknown"], "want": "linux/amd64", "pick": null},
  {"candidates": [], "want": "linux/amd64", "pick": null},
  {"candidates": ["windows/amd64", "linux/amd64", "darwin/arm64"], "want": "linux/amd64", "pick": 1},
  {"candidates": ["linux/amd64", "linux/arm64/v8"], "want": "linux/s390x", "pick": null},
  {"candidates": ["linux/ppc64le", "linux/s390x"], "want": "linux/s390x", "pick": 1},
  {"candidates": ["linux/riscv64"], "want": "linux/riscv64", "pick": 0},
  {"candidates": ["linux/amd64", "linux/amd64"], "want": "linux/amd64/v1", "pick": 0}
]
""")
