import pytest

from hub.crm.inn import check_inn, check_kpp, check_okpo


@pytest.mark.parametrize("inn", ["7707083893", "500100732259", "7736207543", "7702070139"])
def test_valid_inns(inn: str) -> None:
    assert check_inn(inn) is None


@pytest.mark.parametrize("inn", ["7707083894", "7707083883", "500100732258", "500100732249", "0000000001"])
def test_checksum_mismatch(inn: str) -> None:
    assert check_inn(inn) == "checksum does not match"


@pytest.mark.parametrize("inn", ["", "770708389", "77070838931", "7707O83893", "７７０７０８３８９３",
                                 "7707083893 ", "-707083893", "1" * 1000])
def test_wrong_shape(inn: str) -> None:
    assert check_inn(inn) == "must be 10 or 12 digits"


@pytest.mark.parametrize("kpp", ["773601001", "7736AB001", "770701001", "7707Z1001"])
def test_valid_kpp(kpp: str) -> None:
    assert check_kpp(kpp) is None


@pytest.mark.parametrize("kpp", ["", "77360100", "7736010011", "7736ab001", "77A601001", "773601A01",
                                 "7736ЖЖ001"])
def test_invalid_kpp(kpp: str) -> None:
    assert check_kpp(kpp) is not None


def _okpo_with_control(body: str) -> str:
    """An independent implementation of the OKPO control digit for building 10-digit cases."""
    digits = [int(c) for c in body]

    def rem(shift: int) -> int:
        return sum(d * ((i + shift) % 10 + 1) for i, d in enumerate(digits)) % 11

    r = rem(0)
    if r == 10:
        r = rem(2)
        if r == 10:
            r = 0
    return body + str(r)


def test_okpo() -> None:
    assert check_okpo("00032537") is None  # Sberbank
    assert check_okpo("00032538") == "checksum does not match"
    assert check_okpo("0003253") == "must be 8 or 10 digits"
    assert check_okpo("000325377") == "must be 8 or 10 digits"
    assert check_okpo("0003253a") == "must be 8 or 10 digits"
    for body in ("012345678", "987654321", "000000019", "111111111", "562093742"):
        code = _okpo_with_control(body)
        assert check_okpo(code) is None, code
        wrong = code[:-1] + str((int(code[-1]) + 1) % 10)
        assert check_okpo(wrong) == "checksum does not match"


def test_okpo_second_pass() -> None:
    # 1234567: weights 1..7 give 140 % 11 = 8 → control 8; find a body whose first pass gives 10
    body = next(f"{n:07d}" for n in range(10**6, 10**7)
                if sum(int(c) * (i + 1) for i, c in enumerate(f"{n:07d}")) % 11 == 10)
    second = sum(int(c) * (i + 3) for i, c in enumerate(body)) % 11
    assert check_okpo(body + str(0 if second == 10 else second)) is None
