from conversations.masking import mask_document, mask_phone, mask_text


def test_it_masks_a_phone_keeping_prefix_and_last_two_digits():
    assert mask_phone("5511987654321") == "5511*******21"
    assert mask_phone("+55 (11) 98765-4321") == "5511*******21"


def test_it_masks_short_numbers_completely():
    assert mask_phone("12345") == "*****"
    assert mask_phone("") == ""


def test_it_masks_a_cpf_like_the_receita_does():
    assert mask_document("529.982.247-25") == "***.982.247-**"
    assert mask_document("52998224725") == "***.982.247-**"


def test_it_masks_numeric_and_alphanumeric_cnpjs():
    assert mask_document("11.222.333/0001-81") == "**.***.333/0001-**"
    assert mask_document("12.abc.345/01de-35") == "**.***.345/01DE-**"


def test_it_masks_anything_else_completely():
    assert mask_document("123") == "***"


def test_it_never_shows_message_text():
    assert mask_text("meu CPF é 529.982.247-25") == "<24 chars>"
