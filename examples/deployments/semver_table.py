"""Which versions a version specifier accepts, decided by `packaging`, as pip decides.

Prints a Markdown table: one row per published version of an imaginary dependency,
one column per specifier a `pyproject.toml` might give it, and a last row with the
version pip would install (the highest one accepted).

Run it:

    python examples/deployments/semver_table.py

No environment variables. `packaging` (in requirements/examples.txt) is the library
pip vendors to make the same decisions.
"""

from __future__ import annotations

from packaging.specifiers import SpecifierSet
from packaging.version import Version

# --8<-- [start:data]
SPECIFIERS = ["~=1.4.2", "==1.4.*", ">=1.4,<2"]
PUBLISHED = ["1.3.9", "1.4.0", "1.4.2", "1.4.2.post1", "1.4.10"]
PUBLISHED += ["1.5.0b1", "1.5.0", "1.9.1", "2.0.0rc1", "2.0.0"]
# --8<-- [end:data]


# --8<-- [start:decide]
def candidates(specifier: str, published: list[str]) -> list[str]:
    """The versions pip may choose for `specifier`, as pip filters them: pre-releases
    only when the specifier names one, or when no final release fits."""
    return list(SpecifierSet(specifier).filter(published))


def installs(specifier: str, published: list[str]) -> str:
    """What pip picks: the highest candidate."""
    return max(candidates(specifier, published), key=Version, default="nothing")


# --8<-- [end:decide]


def table(specifiers: list[str], published: list[str]) -> str:
    lines = [
        "| version | " + " | ".join(f"`{s}`" for s in specifiers) + " |",
        "|---" * (len(specifiers) + 1) + "|",
    ]
    accepted = {s: candidates(s, published) for s in specifiers}
    for version in published:
        marks = ["yes" if version in accepted[s] else "—" for s in specifiers]
        lines.append(f"| {version} | " + " | ".join(marks) + " |")
    picks = [f"**{installs(s, published)}**" for s in specifiers]
    lines.append("| pip installs | " + " | ".join(picks) + " |")
    return "\n".join(lines)


if __name__ == "__main__":
    print(table(SPECIFIERS, PUBLISHED))
