import pytest

from hub.crm import phones

RUSSIAN_FORMS = ["8 (916) 123-45-67", "+7 916 123 45 67", "79161234567", "9161234567", "89161234567",
                 "+7(916)1234567", " 8-916-123-45-67 ", "810 7 916 123 45 67"]


@pytest.mark.parametrize("raw", RUSSIAN_FORMS)
def test_every_russian_format_gives_the_same_e164(raw: str) -> None:
    assert phones.normalize(raw) == "+79161234567"


def test_other_countries_and_regions() -> None:
    assert phones.normalize("+1 650 253 0000") == "+16502530000"
    assert phones.normalize("(650) 253-0000", "US") == "+16502530000"
    assert phones.normalize("8 800 555-35-35") == "+78005553535"
    assert phones.normalize("+7 (495) 123-45-67") == "+74951234567"


@pytest.mark.parametrize("raw", ["", "   ", "abc", "12345", "+7 916 123", "8 (916) 123-45-67-89-00-11",
                                 "9" * 100, "+7916\x001234567", "'; DROP TABLE clients; --", "☎️"])
def test_invalid_numbers_are_refused_with_a_reason(raw: str) -> None:
    with pytest.raises(ValueError) as err:
        phones.normalize(raw)
    assert str(err.value) in ("not a valid phone number", "must not be empty")


def test_non_string_is_refused() -> None:
    with pytest.raises(ValueError):
        phones.normalize(79161234567)  # type: ignore[arg-type]


def test_tail() -> None:
    assert phones.tail("+79161234567") == "9161234567"
    assert phones.tail("8 (916) 123-45-67") == "9161234567"
    assert phones.tail("123") == "123"


def test_lookup_keys() -> None:
    assert phones.lookup_keys("8 (916) 123-45-67") == ("+79161234567", "9161234567")
    # an international prefix the RU rules do not know: only the last ten digits can be trusted
    assert phones.lookup_keys("00 7 916 123 45 67") == (None, "9161234567")
    assert phones.lookup_keys("101") == (None, None)
    assert phones.lookup_keys("anonymous") == (None, None)
    assert phones.lookup_keys("1" * 500) == (None, None)
