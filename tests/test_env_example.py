"""`.env.example` documents every ``BMS_*`` variable the settings read, each with its comment, and names
none that nothing reads."""
import re
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
SETTINGS = sorted((ROOT / "billmysales" / "settings").glob("*.py"))
# env("BMS_X", ...), env.int("BMS_X", ...), env.list(...), env.dict(...): every way django-environ is read here.
ENV_READ = re.compile(r"""\benv(?:\.\w+)?\(\s*["'](BMS_[A-Z0-9_]+)["']""")
EXAMPLE_LINE = re.compile(r"^#?\s*(BMS_[A-Z0-9_]+)=")


def read_in_settings() -> set[str]:
    return {name for path in SETTINGS for name in ENV_READ.findall(path.read_text(encoding="utf-8"))}


def example_lines() -> list[str]:
    return (ROOT / ".env.example").read_text(encoding="utf-8").splitlines()


def listed_in_example() -> dict[str, int]:
    """Each BMS_* variable of .env.example (set or commented out) and its line index."""
    return {m.group(1): n for n, line in enumerate(example_lines()) if (m := EXAMPLE_LINE.match(line))}


def test_the_settings_reader_finds_the_variables():
    # The pattern must see the variables the settings are known to read, or the checks below prove nothing.
    found = read_in_settings()
    assert {"BMS_PUBLIC_URL", "BMS_SHOPIFY_CLIENT_ID", "BMS_API_RATE_CLIENT", "BMS_WEBHOOK_RETRY_DELAYS"} <= found
    assert len(found) >= 25


def test_every_bms_variable_read_in_settings_is_in_env_example():
    missing = read_in_settings() - set(listed_in_example())
    assert not missing, f".env.example does not list {sorted(missing)}: add each with a one-line comment"


def test_env_example_names_no_bms_variable_that_nothing_reads():
    unknown = set(listed_in_example()) - read_in_settings()
    assert not unknown, f".env.example lists {sorted(unknown)}, which no settings module reads"


def test_each_bms_variable_in_env_example_has_a_comment_above_it():
    lines = example_lines()
    uncommented = []
    for name, n in listed_in_example().items():
        above = n - 1
        # A comment block may describe a group of variables: walk up over the group's other variables.
        while above >= 0 and EXAMPLE_LINE.match(lines[above]):
            above -= 1
        if above < 0 or not lines[above].startswith("# ") or re.match(r"^#\s*[A-Z_]+=", lines[above]):
            uncommented.append(name)
    assert not uncommented, f"no comment above {uncommented} in .env.example"
