import pytest

from conversations.masking import mask_document
from crm_gateway.documents import INVALID, VALID, compact, find_document, find_documents, validate

CPF = "52998224725"
CNPJ = "11222333000181"
ALNUM_CNPJ = "12ABC34501DE35"


@pytest.mark.parametrize(
    ("text", "status", "kind", "value"),
    [
        ("meu cpf é 529.982.247-25", VALID, "cpf", CPF),
        ("52998224725", VALID, "cpf", CPF),
        ("cpf 529982247-25 obrigado", VALID, "cpf", CPF),
        ("529.98224725", VALID, "cpf", CPF),
        ("CPF: 529.982.247-25.", VALID, "cpf", CPF),
        ("cnpj 11.222.333/0001-81", VALID, "cnpj", CNPJ),
        ("11222333000181", VALID, "cnpj", CNPJ),
        ("empresa 12.ABC.345/01DE-35", VALID, "cnpj", ALNUM_CNPJ),
        ("empresa 12.abc.345/01de-35", VALID, "cnpj", ALNUM_CNPJ),
        ("12ABC34501DE35", VALID, "cnpj", ALNUM_CNPJ),
        ("meu cpf 11144477735", VALID, "cpf", "11144477735"),
        ("123.456.789-00", INVALID, "cpf", "12345678900"),
        ("12345678900", INVALID, "cpf", "12345678900"),
        ("11.222.333/0001-82", INVALID, "cnpj", "11222333000182"),
        ("11222333000182", INVALID, "cnpj", "11222333000182"),
        ("12.ABC.345/01DE-36", INVALID, "cnpj", "12ABC34501DE36"),
    ],
)
def test_it_finds_and_validates_documents(text, status, kind, value):
    found = find_document([text])
    assert (found.status, found.kind, found.value) == (status, kind, value)


@pytest.mark.parametrize(
    "text",
    [
        "me liga no 11987654321",
        "meu número é +55 11 98765-4321",
        "5511987654321",
        "(11) 98765-4321",
        "liga 01133334444 ou 08007771234",
        "1133334444",
        "protocolo 20241125103000",
        "protocolo: 52998224725",
        "nº 11222333000181",
        "pedido #12345678900",
        "valor R$ 1.234.567,89 em 25/11/2026",
        "ip 192.168.100.10",
        "1.529.982.247-25",
        "529.982.247-255",
        "codigo ABCDEFGHIJKL12",
        "12ABC34501DE36",
        "sem documento nenhum",
        "",
    ],
)
def test_it_ignores_numbers_that_only_look_like_documents(text):
    assert find_documents(text) == []


def test_it_takes_a_phone_shaped_cpf_only_when_the_customer_says_cpf():
    phone_shaped_valid_cpf = next(
        f"11{n:09d}" for n in range(900000000, 999999999) if validate(f"11{n:09d}")
    )
    assert find_document([f"liga {phone_shaped_valid_cpf}"]) is None
    found = find_document([f"meu CPF: {phone_shaped_valid_cpf}"])
    assert found.valid and found.value == phone_shaped_valid_cpf


def test_it_prefers_the_last_valid_document_of_a_batch():
    found = find_document(["123.456.789-00", "ops, 529.982.247-25", "obrigado"])
    assert found.valid and found.value == CPF
    found = find_document(["529.982.247-25", "e o da empresa 11.222.333/0001-81"])
    assert found.value == CNPJ


def test_it_reports_invalid_when_the_batch_has_no_valid_document():
    found = find_document(["oi", "meu cpf é 529.982.247-24"])
    assert found.status == INVALID and not found.valid


def test_it_validates_and_compacts():
    assert validate("529.982.247-25") == ("cpf", CPF)
    assert validate("12.abc.345/01de-35") == ("cnpj", ALNUM_CNPJ)
    assert validate("123.456.789-00") is None
    assert validate("abc") is None
    assert compact(" 12.abc.345/01de-35 ") == ALNUM_CNPJ


def test_it_masks_documents_of_every_kind():
    assert mask_document(CPF) == "***.982.247-**"
    assert mask_document(CNPJ) == "**.***.333/0001-**"
    assert mask_document(ALNUM_CNPJ) == "**.***.345/01DE-**"
