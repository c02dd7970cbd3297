"""Languages the miner recognises, by file extension."""

from __future__ import annotations

from core.errors import OptionError

EXTENSIONS: dict[str, tuple[str, ...]] = {
    "python": (".py", ".pyi"),
    "javascript": (".js", ".mjs", ".cjs", ".jsx"),
    "typescript": (".ts", ".tsx"),
    "java": (".java",),
    "go": (".go",),
    "rust": (".rs",),
    "c": (".c", ".h"),
    "cpp": (".cc", ".cpp", ".cxx", ".hpp", ".hh", ".hxx"),
    "csharp": (".cs",),
    "ruby": (".rb",),
    "php": (".php",),
    "kotlin": (".kt", ".kts"),
    "swift": (".swift",),
    "scala": (".scala",),
    "shell": (".sh", ".bash"),
}
DEFAULT_LANGUAGES = ("python",)


def extension_map(languages: tuple[str, ...] | list[str]) -> dict[str, str]:
    """Map each extension of the chosen languages to its language; reject unknown names."""
    unknown = [name for name in languages if name.lower() not in EXTENSIONS]
    if unknown:
        raise OptionError(
            f"unsupported language {', '.join(unknown)!s}; choose from {', '.join(sorted(EXTENSIONS))}"
        )
    return {ext: name.lower() for name in languages for ext in EXTENSIONS[name.lower()]}


def language_of(path: str, extensions: dict[str, str]) -> str | None:
    """The language of a path under the chosen extensions, or None."""
    name = path[path.rfind("/") + 1:]
    dot = name.rfind(".")
    # A leading dot names a hidden file (".py" itself has no extension), as in PurePosixPath.suffix.
    return extensions.get(name[dot:].lower()) if dot > 0 else None
