import pytest

from conversations.phone import normalise_wa_id


@pytest.mark.parametrize(
    ("raw", "expected"),
    [
        ("551187654321", "5511987654321"),  # Sao Paulo mobile without the ninth digit
        ("5511987654321", "5511987654321"),  # already with it
        ("558199998888", "5581999998888"),  # Recife, first digit 9
        ("556176543210", "5561976543210"),  # first digit 7
        ("556166543210", "5561966543210"),  # first digit 6
        ("+55 (11) 8765-4321", "5511987654321"),  # formatting is dropped
    ],
)
def test_it_adds_the_ninth_digit_to_brazilian_mobiles(raw, expected):
    assert normalise_wa_id(raw) == expected


def test_it_makes_both_forms_of_a_mobile_one_number():
    assert normalise_wa_id("5521987651234") == normalise_wa_id("552187651234")


@pytest.mark.parametrize(
    "raw",
    [
        "551132654321",  # Sao Paulo landline (first digit 3)
        "552125551234",  # Rio landline (first digit 2)
        "555140001234",  # first digit 4
        "551058765432",  # first digit 5
        "16505551234",  # United States
        "351912345678",  # Portugal mobile
        "4915123456789",  # Germany
        "550187654321",  # area code with a 0 is not a Brazilian area code
        "55118765432",  # too short for a Brazilian mobile: left alone
        "5511987654321",
    ],
)
def test_it_leaves_landlines_foreign_and_complete_numbers_alone(raw):
    assert normalise_wa_id(raw) == raw


def test_it_does_not_mistake_a_foreign_number_starting_with_55_digits_later():
    # A US number that happens to contain 55 after the country code is untouched.
    assert normalise_wa_id("15518765432") == "15518765432"


@pytest.mark.parametrize(
    "raw",
    [
        "",
        "   ",
        "abc",
        "5511a87654321",
        "55 11 8765-432x",
        "1234567",
        "1" * 16,
        "٥٥١١٨٧٦٥٤٣٢١",
        "+",
    ],
)
def test_it_raises_on_things_that_are_not_numbers(raw):
    with pytest.raises(ValueError):
        normalise_wa_id(raw)


@pytest.mark.parametrize("raw", [None, 5511987654321, b"5511987654321"])
def test_it_raises_on_non_strings(raw):
    with pytest.raises(ValueError):
        normalise_wa_id(raw)
