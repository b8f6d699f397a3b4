"""Generate realistic memdb seed datasets of any size (``MEMDB_SEED_FILE`` format).

This module owns the dataset generator behind ``data/sample.json`` and the
benchmark datasets: a JSON object ``{"users": [...], "orders": [...]}`` whose
records pass :func:`server.seed.load_seed`. The output is a pure function of the
arguments: the same seed gives the same bytes (uuids and bcrypt salts come from
the seeded generator too, and the two years of timestamps end at ``--end``, not
at the current time).

The first user is the admin. Every user carries a ``password_hash``: bcrypt runs
once per distinct password, so a million records take well under a minute.

    .venv/bin/python bench/make_dataset.py --users 40 --orders 300 --indent --output data/sample.json
"""

from __future__ import annotations

import argparse
import base64
import bisect
import gc
import math
import sys
import time
import unicodedata
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from datetime import UTC, date, datetime, timedelta
from itertools import accumulate
from pathlib import Path
from random import Random
from typing import Any, TypeVar

import bcrypt
import orjson

Record = dict[str, Any]
T = TypeVar("T")

DEFAULT_END = "2026-11-01T00:00:00Z"
SPAN_DAYS = 730  # timestamps fall in the two years before --end
MICROS_PER_SECOND = 1_000_000
MICROS_PER_DAY = 86_400 * MICROS_PER_SECOND
MAX_PASSWORD_BYTES = 72  # bcrypt's limit, as in server.models.user

STATUSES = ("pending", "paid", "shipped", "delivered", "cancelled")


def picker(items: Sequence[T], weights: Sequence[float]) -> Callable[[Callable[[], float]], T]:
    """Weighted choice by bisection: ``rng.choices(items, weights)[0]`` without its per-call overhead."""
    if len(items) != len(weights) or not items:
        raise ValueError("need one weight per item")
    chosen, cumulative = tuple(items), tuple(accumulate(weights))
    total, bisect_right = cumulative[-1], bisect.bisect_right

    def pick(random: Callable[[], float]) -> T:
        return chosen[bisect_right(cumulative, random() * total)]

    return pick


# -- people ------------------------------------------------------------------

FIRST_NAMES = (
    "Olivia", "Liam", "Emma", "Noah", "Amelia", "Oliver", "Sophia", "Elijah", "Charlotte", "James",
    "Ava", "Lucas", "Isabella", "Mateo", "Mia", "Ethan", "Harper", "Benjamin", "Evelyn", "Henry",
    "Sofía", "José", "Lucía", "Diego", "Valentina", "Santiago", "Camila", "João", "Beatriz", "Tiago",
    "Chloé", "Léa", "Hugo", "Anaïs", "Renée", "Louis", "Zoë", "Émile", "Inès", "Théo",
    "Jürgen", "Lena", "Björn", "Søren", "Freya", "Lukas", "Maja", "Elias", "Astrid", "Jonas",
    "Łukasz", "Agnieszka", "Dmitri", "Natalia", "Ivan", "Anya", "Marek", "Zofia", "Katarzyna", "Pavel",
    "Aiko", "Hiroshi", "Yuki", "Haruto", "Sakura", "Min-jun", "Ji-woo", "Wei", "Mei", "Jun",
    "Priya", "Arjun", "Ananya", "Rohan", "Aisha", "Mohammed", "Fatima", "Omar", "Layla", "Yusuf",
    "Chiara", "Giulia", "Lorenzo", "Matteo", "Francesca", "Siobhán", "Niamh", "Cian", "Aoife", "Seán",
    "Olusegun", "Amara", "Chinedu", "Kwame", "Zanele", "Thabo", "Nia", "Malik", "Grace", "Daniel",
)  # fmt: skip

LAST_NAMES = (
    "Smith", "Johnson", "Williams", "Brown", "Jones", "Miller", "Davis", "Wilson", "Taylor", "Anderson",
    "Thomas", "Moore", "Jackson", "White", "Harris", "Clark", "Lewis", "Walker", "Young", "Hall",
    "García", "Martínez", "Rodríguez", "Fernández", "López", "González", "Pérez", "Sánchez", "Silva", "Santos",
    "Müller", "Schmidt", "Schneider", "Fischer", "Weber", "Becker", "Hoffmann", "Schäfer", "Koch", "Wagner",
    "Dubois", "Lefèvre", "Moreau", "Laurent", "Girard", "Rossi", "Russo", "Bianchi", "Romano", "Esposito",
    "Johansson", "Andersson", "Nilsson", "Jensen", "Hansen", "Nielsen", "van der Berg", "de Vries", "Jansen", "Bakker",
    "Kowalski", "Nowak", "Wiśniewski", "Ivanova", "Petrov", "Novák", "Horváth", "Popescu", "Papadopoulos", "Öztürk",
    "O'Brien", "O'Connor", "Murphy", "Kelly", "MacDonald", "Ó Súilleabháin", "Tanaka", "Suzuki", "Nakamura", "Watanabe",
    "Kim", "Lee", "Park", "Chen", "Wang", "Zhang", "Liu", "Nguyen", "Tran", "Pham",
    "Patel", "Sharma", "Singh", "Gupta", "Khan", "Hassan", "Okafor", "Mensah", "Dlamini", "Adeyemi",
)  # fmt: skip

MIDDLE_INITIALS = "ABCDEFGHJKLMNPRSTW"

# letters NFKD does not reduce to ASCII
_ASCII_FOLD = str.maketrans({"ł": "l", "Ł": "L", "ø": "o", "Ø": "O", "ß": "ss", "æ": "ae", "đ": "d"})

EMAIL_DOMAINS = ("example.com", "example.org", "example.net", "mail.example.com", "inbox.example.org")

SIGNUP_SOURCES = ("web", "ios", "android", "referral")
USER_TAGS = ("early-adopter", "vip", "wholesale", "student", "beta-tester", "loyalty", "b2b", "newsletter-2025")

# -- places --------------------------------------------------------------------


@dataclass(frozen=True)
class Country:
    """Where orders ship: cities with a postal-code template (``#`` digit, ``?`` letter) and street names."""

    name: str
    weight: int
    currency: str
    language: str
    line1: str  # format with {number} and {street}
    cities: tuple[tuple[str, str], ...]
    streets: tuple[str, ...]

    @property
    def apartments(self) -> bool:
        """Whether line1 sometimes ends with an apartment (``12 Main Street, Apt 4B``)."""
        return self.language == "en" and self.line1.startswith("{number}")


COUNTRIES = (
    Country(
        "United States", 30, "USD", "en", "{number} {street}",
        (("Seattle", "981##"), ("Austin", "787##"), ("Boston", "021##"), ("Denver", "802##"),
         ("Chicago", "606##"), ("Portland", "972##"), ("Atlanta", "303##"), ("San Diego", "921##")),
        ("Maple Street", "Oak Avenue", "Pine Road", "Cedar Lane", "Elm Street", "Lakeview Drive", "Sunset Boulevard"),
    ),
    Country(
        "United Kingdom", 12, "GBP", "en", "{number} {street}",
        (("London", "SW1# #??"), ("Manchester", "M## #??"), ("Bristol", "BS# #??"), ("Edinburgh", "EH# #??"),
         ("Leeds", "LS# #??"), ("Cardiff", "CF1# #??")),
        ("High Street", "Station Road", "Church Lane", "Victoria Road", "Mill Lane", "Queens Road"),
    ),
    Country(
        "Germany", 10, "EUR", "de", "{street} {number}",
        (("Berlin", "10###"), ("München", "80###"), ("Hamburg", "20###"), ("Köln", "50###"),
         ("Frankfurt am Main", "60###"), ("Leipzig", "04###")),
        ("Hauptstraße", "Bahnhofstraße", "Gartenweg", "Schillerstraße", "Lindenallee", "Goethestraße"),
    ),
    Country(
        "France", 8, "EUR", "fr", "{number} {street}",
        (("Paris", "750##"), ("Lyon", "6900#"), ("Marseille", "130##"), ("Toulouse", "310##"),
         ("Bordeaux", "330##"), ("Lille", "590##")),
        ("rue de la République", "avenue Victor Hugo", "boulevard Voltaire", "rue des Lilas", "place du Marché"),
    ),
    Country(
        "Canada", 8, "CAD", "en", "{number} {street}",
        (("Toronto", "M#? #?#"), ("Vancouver", "V#? #?#"), ("Montréal", "H#? #?#"), ("Calgary", "T#? #?#"),
         ("Ottawa", "K#? #?#")),
        ("King Street West", "Main Street", "Rue Sainte-Catherine", "Granville Street", "Bank Street"),
    ),
    Country(
        "Australia", 6, "AUD", "en", "{number} {street}",
        (("Sydney", "2###"), ("Melbourne", "3###"), ("Brisbane", "4###"), ("Perth", "6###"), ("Adelaide", "5###")),
        ("George Street", "Collins Street", "Queen Street", "Hay Street", "King William Street"),
    ),
    Country(
        "Japan", 5, "JPY", "ja", "{number} {street}",
        (("Tokyo", "1##-####"), ("Osaka", "5##-####"), ("Kyoto", "6##-####"), ("Sapporo", "06#-####"),
         ("Fukuoka", "81#-####")),
        ("Jingumae", "Shibuya", "Umeda", "Nakagyo-ku", "Tenjin", "Ginza"),
    ),
    Country(
        "Netherlands", 4, "EUR", "nl", "{street} {number}",
        (("Amsterdam", "10## ??"), ("Rotterdam", "30## ??"), ("Utrecht", "35## ??"), ("Den Haag", "25## ??"),
         ("Eindhoven", "56## ??")),
        ("Kerkstraat", "Prinsengracht", "Dorpsstraat", "Molenweg", "Stationsplein"),
    ),
    Country(
        "Spain", 4, "EUR", "es", "{street}, {number}",
        (("Madrid", "28###"), ("Barcelona", "08###"), ("Valencia", "46###"), ("Sevilla", "41###"), ("Bilbao", "48###")),
        ("Calle Mayor", "Gran Vía", "Calle de Alcalá", "Paseo de Gracia", "Avenida de la Constitución"),
    ),
    Country(
        "Italy", 4, "EUR", "it", "{street}, {number}",
        (("Roma", "001##"), ("Milano", "201##"), ("Napoli", "801##"), ("Torino", "101##"), ("Firenze", "501##")),
        ("Via Roma", "Corso Vittorio Emanuele", "Via Garibaldi", "Via Dante", "Piazza del Duomo"),
    ),
    Country(
        "Brazil", 4, "BRL", "pt", "{street}, {number}",
        (("São Paulo", "0####-###"), ("Rio de Janeiro", "2####-###"), ("Belo Horizonte", "3####-###"),
         ("Curitiba", "8####-###"), ("Porto Alegre", "9####-###")),
        ("Rua das Flores", "Avenida Paulista", "Rua Augusta", "Avenida Atlântica", "Rua XV de Novembro"),
    ),
    Country(
        "India", 3, "INR", "en", "{number} {street}",
        (("Mumbai", "400###"), ("Bengaluru", "560###"), ("New Delhi", "110###"), ("Chennai", "600###"),
         ("Pune", "411###")),
        ("MG Road", "Linking Road", "Brigade Road", "Anna Salai", "FC Road"),
    ),
    Country(
        "Sweden", 2, "SEK", "sv", "{street} {number}",
        (("Stockholm", "11# ##"), ("Göteborg", "41# ##"), ("Malmö", "21# ##"), ("Uppsala", "75# ##")),
        ("Storgatan", "Drottninggatan", "Kungsgatan", "Vasagatan", "Sveavägen"),
    ),
    Country(
        "Mexico", 2, "MXN", "es", "{street} {number}",
        (("Ciudad de México", "06###"), ("Guadalajara", "44###"), ("Monterrey", "64###"), ("Puebla", "72###")),
        ("Avenida Juárez", "Paseo de la Reforma", "Calle Madero", "Avenida Insurgentes"),
    ),
)  # fmt: skip

_POSTAL_LETTERS = "ABCDEFGHJKLMNPRSTUVWXYZ"
_DIGITS = "0123456789"
_pick_country = picker(COUNTRIES, [country.weight for country in COUNTRIES])

# -- shop ----------------------------------------------------------------------

# (name, typical unit price in cents, ships physically)
PRODUCTS: tuple[tuple[str, int, bool], ...] = (
    ("Wireless Earbuds", 7999, True),
    ("USB-C Charging Cable (2 m)", 1499, True),
    ("Bluetooth Speaker", 4999, True),
    ("Mechanical Keyboard", 11999, True),
    ("Ergonomic Wireless Mouse", 3999, True),
    ("27-inch 4K Monitor", 32999, True),
    ("Noise-Cancelling Headphones", 24999, True),
    ("Portable SSD 1 TB", 10999, True),
    ("Smartwatch Series 5", 19999, True),
    ("Phone Case", 1999, True),
    ("Laptop Stand", 3499, True),
    ("HD Webcam", 5999, True),
    ("Espresso Machine", 39999, True),
    ("Chef's Knife 20 cm", 8999, True),
    ("Cast Iron Skillet", 3999, True),
    ("French Press", 2999, True),
    ("Non-Stick Frying Pan", 3499, True),
    ("Electric Kettle", 4499, True),
    ("Ceramic Dinner Plates (set of 4)", 4999, True),
    ("Bamboo Cutting Board", 2499, True),
    ("Stand Mixer", 29999, True),
    ("Running Shoes", 12999, True),
    ("Merino Wool Sweater", 8999, True),
    ("Rain Jacket", 14999, True),
    ("Organic Cotton T-Shirt", 2499, True),
    ("Slim Fit Jeans", 6999, True),
    ("Leather Wallet", 4999, True),
    ("Canvas Backpack", 7999, True),
    ("Wool Socks (3 pairs)", 1999, True),
    ("Sunglasses", 12999, True),
    ("Yoga Mat", 3999, True),
    ("Adjustable Dumbbells", 29999, True),
    ("Insulated Water Bottle", 2999, True),
    ("Camping Tent (2-person)", 19999, True),
    ("Bike Helmet", 5999, True),
    ("Resistance Bands Set", 1999, True),
    ("LED Desk Lamp", 3999, True),
    ("Memory Foam Pillow", 4999, True),
    ("Linen Duvet Cover", 11999, True),
    ("Scented Candle", 1999, True),
    ("Indoor Plant Pot", 2499, True),
    ("Robot Vacuum", 34999, True),
    ("Air Purifier", 17999, True),
    ("Board Game: Settlers", 4499, True),
    ("1000-Piece Jigsaw Puzzle", 1999, True),
    ("Building Blocks Starter Set", 5999, True),
    ("Watercolor Paint Set", 2999, True),
    ("Hardcover Notebook", 1499, True),
    ("Fountain Pen", 3499, True),
    ("Paperback Novel", 1599, True),
    ("Cookbook: Weeknight Meals", 2999, True),
    ("Ground Coffee 1 kg", 2499, True),
    ("Loose Leaf Green Tea", 1499, True),
    ("Dark Chocolate Gift Box", 2999, True),
    ("Dog Bed (large)", 6999, True),
    ("Cat Scratching Post", 3999, True),
    ("E-book: Learning Python", 3999, False),
    ("Gift Card", 5000, False),
    ("Streaming Subscription (12 months)", 11999, False),
    ("Online Course: Data Engineering", 19900, False),
)
_FIXED_PRICES = {"Gift Card": (2500, 5000, 10000)}


def price_points(name: str, typical_cents: int) -> tuple[int, ...]:
    """The unit prices a product sold at over two years: within 10% of typical, ending in .99 or .95."""
    if name in _FIXED_PRICES:
        return _FIXED_PRICES[name]
    dollars = sorted({max(1, round(typical_cents * (100 + step) / 10_000)) for step in range(-10, 11)})
    return tuple(100 * whole - ending for whole in dollars for ending in (1, 1, 1, 1, 5))


# (name, unit prices in cents, ships physically); a gentle long tail: the first sell four times as often as the last
_pick_product = picker(
    [(name, price_points(name, cents), physical) for name, cents, physical in PRODUCTS],
    [1.0 / (1 + rank / 20) for rank in range(len(PRODUCTS))],
)

_pick_quantity = picker((1, 2, 3, 4, 5), (55, 25, 10, 6, 4))

_pick_channel = picker(("web", "ios", "android", "marketplace", "phone"), (45, 20, 20, 10, 5))
COUPONS = (("WELCOME10", 10), ("SPRING15", 15), ("VIP20", 20), ("FREESHIP", 0), ("BLACKFRIDAY25", 25))

# status mix by how old the order is at --end: recent orders are still on their way
_pick_recent_status = picker(STATUSES, (45, 35, 12, 1, 7))  # under two days old
_pick_fresh_status = picker(STATUSES, (10, 20, 40, 20, 10))  # under ten days old
_pick_old_status = picker(STATUSES, (3, 6, 6, 71, 14))
# how long after creation each status was reached (min, max), in micros
_STATUS_DELAY = {
    "pending": (0, 0),
    "paid": (30 * MICROS_PER_SECOND, 6 * 3600 * MICROS_PER_SECOND),
    "shipped": (MICROS_PER_DAY // 2, 4 * MICROS_PER_DAY),
    "delivered": (2 * MICROS_PER_DAY, 12 * MICROS_PER_DAY),
    "cancelled": (5 * 60 * MICROS_PER_SECOND, 5 * MICROS_PER_DAY),
}


# -- helpers -------------------------------------------------------------------


_UUID_CLEAR = ~((0xF000 << 64) | (0xC000 << 48))
_UUID_SET = (0x4000 << 64) | (0x8000 << 48)


def new_uuid(rng: Random) -> str:
    """A version-4 uuid drawn from ``rng`` (so it repeats with the seed).

    The same string as ``str(uuid.UUID(int=rng.getrandbits(128), version=4))``, three times faster.
    """
    digits = f"{(rng.getrandbits(128) & _UUID_CLEAR) | _UUID_SET:032x}"
    return f"{digits[:8]}-{digits[8:12]}-{digits[12:16]}-{digits[16:20]}-{digits[20:]}"


def bcrypt_hash(password: str, rounds: int, rng: Random) -> str:
    """A bcrypt hash of ``password`` whose salt comes from ``rng``, so the output is reproducible."""
    salt_b64 = base64.b64encode(rng.randbytes(16)).decode().rstrip("=")
    salt_bcrypt = salt_b64.translate(
        str.maketrans(
            "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/",
            "./ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789",
        )
    )
    salt = f"$2b${rounds:02d}${salt_bcrypt}".encode()
    return bcrypt.hashpw(password.encode(), salt).decode()


class Clock:
    """Formats microseconds since the epoch as ``YYYY-MM-DDTHH:MM:SS.ffffffZ`` from cached days and seconds."""

    def __init__(self) -> None:
        self._days: dict[int, str] = {}
        self._seconds = [f"{s // 3600:02d}:{s // 60 % 60:02d}:{s % 60:02d}" for s in range(86_400)]

    def __call__(self, micros: int) -> str:
        days, micros = divmod(micros, MICROS_PER_DAY)
        seconds, fraction = divmod(micros, MICROS_PER_SECOND)
        day = self._days.get(days)
        if day is None:
            day = self._days[days] = (date(1970, 1, 1) + timedelta(days=days)).isoformat()
        return f"{day}T{self._seconds[seconds]}.{fraction:06d}Z"


def parse_end(text: str) -> int:
    """``--end`` (an ISO date or UTC timestamp) as microseconds since the epoch."""
    moment = datetime.fromisoformat(text.replace("Z", "+00:00"))
    if moment.tzinfo is None:
        moment = moment.replace(tzinfo=UTC)
    return (moment - datetime(1970, 1, 1, tzinfo=UTC)) // timedelta(microseconds=1)


def increasing_times(rng: Random, count: int, start: int, end: int) -> list[int]:
    """``count`` strictly increasing instants in ``[start, end)``, three times as dense at the end (growth)."""
    span = end - start
    # inverse CDF of the density (1 + 2x) / 2 on [0, 1]
    times = sorted(start + int(span * (math.sqrt(1 + 8 * rng.random()) - 1) / 2) for _ in range(count))
    for index in range(1, count):
        if times[index] <= times[index - 1]:
            times[index] = times[index - 1] + 1
    return times


def ascii_slug(text: str) -> str:
    """Lower-case ASCII letters and digits only: ``"Ó Súilleabháin"`` -> ``"osuilleabhain"``."""
    folded = unicodedata.normalize("NFKD", text.translate(_ASCII_FOLD))
    return "".join(char for char in folded.lower() if char.isascii() and char.isalnum())


def fill_template(random: Callable[[], float], template: str) -> str:
    """Replace each ``#`` with a random digit and each ``?`` with a random capital letter."""
    letters = len(_POSTAL_LETTERS)
    return "".join(
        _DIGITS[int(random() * 10)]
        if char == "#"
        else _POSTAL_LETTERS[int(random() * letters)]
        if char == "?"
        else char
        for char in template
    )


def make_address(random: Callable[[], float]) -> tuple[Country, dict[str, str]]:
    """A random address in a random country (weighted), and that country."""
    country = _pick_country(random)
    city, postal = country.cities[int(random() * len(country.cities))]
    street = country.streets[int(random() * len(country.streets))]
    number = 1 + int(random() * 29) if random() < 0.6 else 30 + int(random() * 370)
    line1 = country.line1.format(number=number, street=street)
    if country.apartments and random() < 0.2:
        line1 += f", Apt {1 + int(random() * 39)}{'ABCD'[int(random() * 4)]}"
    return country, {
        "line1": line1,
        "city": city,
        "postal_code": fill_template(random, postal),
        "country": country.name,
    }


class Emails:
    """Email addresses derived from names, unique case-insensitively."""

    def __init__(self, taken: Sequence[str] = ()) -> None:
        self._taken = {email.lower() for email in taken}
        self._next_suffix: dict[str, int] = {}
        self._slugs: dict[str, str] = {}

    def _slug(self, name: str) -> str:
        slug = self._slugs.get(name)
        if slug is None:
            slug = self._slugs[name] = ascii_slug(name) or "x"
        return slug

    def make(self, random: Callable[[], float], first: str, last: str, birth_year: int | None) -> str:
        given, family = self._slug(first), self._slug(last)
        pattern = int(random() * 8)
        if pattern == 0:
            local = f"{given}{family}"
        elif pattern == 1:
            local = f"{given[0]}{family}"
        elif pattern == 2:
            local = f"{given}_{family}"
        elif pattern == 3:
            local = f"{family}.{given}"
        elif pattern == 4 and birth_year is not None:
            local = f"{given}.{family}{birth_year % 100:02d}"
        else:
            local = f"{given}.{family}"
        domain = _pick_domain(random)
        email = f"{local}@{domain}"  # already lower case: slugs and domains are
        if email in self._taken:
            suffix = self._next_suffix.get(email, 2)
            while f"{local}{suffix}@{domain}" in self._taken:
                suffix += 1
            self._next_suffix[email] = suffix + 1
            email = f"{local}{suffix}@{domain}"
        self._taken.add(email)
        return email


_pick_domain = picker(EMAIL_DOMAINS, (40, 20, 20, 12, 8))
_pick_source = picker(SIGNUP_SOURCES, (45, 22, 23, 10))
_pick_tag_count = picker((0, 1, 2, 3), (40, 35, 18, 7))


# -- generation ----------------------------------------------------------------


@dataclass(frozen=True)
class Options:
    """What to generate; the defaults are the sample dataset's (development credentials only)."""

    users: int
    orders: int
    seed: int = 42
    admin_email: str = "admin@memdb.dev"
    admin_password: str = "memdb-admin-2026"
    password: str = "password123"
    bcrypt_rounds: int = 12
    end: str = DEFAULT_END


def generate(options: Options) -> dict[str, list[Record]]:
    """The whole dataset as ``{"users": [...], "orders": [...]}``, each list in creation order."""
    if options.users < 1:
        raise ValueError("need at least one user (the admin)")
    if options.orders < 0:
        raise ValueError("the number of orders cannot be negative")
    rng = Random(options.seed)
    end = parse_end(options.end)
    start = end - SPAN_DAYS * MICROS_PER_DAY

    hashes: dict[str, str] = {}
    for secret in (options.admin_password, options.password):
        if secret not in hashes:
            hashes[secret] = bcrypt_hash(secret, options.bcrypt_rounds, rng)

    user_times = [start, *increasing_times(rng, options.users - 1, start + MICROS_PER_SECOND, end)]
    stamp = Clock()
    # millions of small dicts: collecting garbage while they pile up only costs time
    collecting = gc.isenabled()
    gc.disable()
    try:
        users, homes = _make_users(rng, options, user_times, hashes, end, stamp)
        orders = _make_orders(rng, options.orders, users, user_times, homes, end, stamp)
    finally:
        if collecting:
            gc.enable()
    return {"users": users, "orders": orders}


def _make_users(
    rng: Random,
    options: Options,
    times: list[int],
    hashes: dict[str, str],
    end: int,
    stamp: Callable[[int], str],
) -> tuple[list[Record], list[dict[str, str]]]:
    """Users (the admin first) and each user's home shipping address."""
    random, sample, triangular = rng.random, rng.sample, rng.triangular
    emails = Emails([options.admin_email])
    users: list[Record] = []
    homes: list[dict[str, str]] = []
    year_at_end = int(stamp(end)[:4])
    customer_hash = hashes[options.password]
    first_names, last_names = FIRST_NAMES, LAST_NAMES
    n_first, n_last, n_initials = len(FIRST_NAMES), len(LAST_NAMES), len(MIDDLE_INITIALS)
    for created in times:
        country, home = make_address(random)
        homes.append(home)
        updated = created if random() < 0.7 else created + int(random() * (end - created))
        if not users:
            users.append(
                {
                    "id": new_uuid(rng),
                    "email": options.admin_email,
                    "full_name": "memdb Administrator",
                    "age": None,
                    "role": "admin",
                    "metadata": {"source": "web", "newsletter": False, "tags": ["staff"]},
                    "password_hash": hashes[options.admin_password],
                    "created_at": stamp(created),
                    "updated_at": stamp(updated),
                }
            )
            continue
        first, last = first_names[int(random() * n_first)], last_names[int(random() * n_last)]
        if random() < 0.08:
            full_name = f"{first} {MIDDLE_INITIALS[int(random() * n_initials)]}. {last}"
        else:
            full_name = f"{first} {last}"
        age = None if random() < 0.12 else round(triangular(18, 90, 31))
        metadata: Record | None = None
        if random() < 0.65:
            tags = _pick_tag_count(random)
            metadata = {
                "source": _pick_source(random),
                "newsletter": random() < 0.4,
                "tags": sample(USER_TAGS, tags) if tags else [],
            }
            if random() < 0.3:
                metadata["preferences"] = {"language": country.language, "currency": country.currency}
        users.append(
            {
                "id": new_uuid(rng),
                "email": emails.make(random, first, last, None if age is None else year_at_end - age),
                "full_name": full_name,
                "age": age,
                "role": "user",
                "metadata": metadata,
                "password_hash": customer_hash,
                "created_at": stamp(created),
                "updated_at": stamp(updated),
            }
        )
    return users, homes


def _make_orders(
    rng: Random,
    count: int,
    users: list[Record],
    user_times: list[int],
    homes: list[dict[str, str]],
    end: int,
    stamp: Callable[[int], str],
) -> list[Record]:
    """Orders by users who existed when the order was placed; every status appears once there are five."""
    random = rng.random
    bisect_left = bisect.bisect_left
    customers_from = user_times[1] if len(user_times) > 1 else user_times[0]
    times = increasing_times(rng, count, customers_from + MICROS_PER_SECOND, end)
    forced = dict(zip(rng.sample(range(count), len(STATUSES)), STATUSES, strict=True)) if count >= len(STATUSES) else {}
    recent, fresh = end - 2 * MICROS_PER_DAY, end - 10 * MICROS_PER_DAY
    user_ids = [user["id"] for user in users]
    orders: list[Record] = []
    for index, created in enumerate(times):
        existing = bisect_left(user_times, created)  # users created strictly before this order
        buyer = 1 + int(random() * (existing - 1)) if existing > 1 else 0  # the admin shops only if alone

        name, prices, physical = _pick_product(random)
        quantity = _pick_quantity(random) if physical else 1
        cents = prices[int(random() * len(prices))] * quantity

        metadata: Record | None = None
        gift = False
        if random() < 0.4:
            gift = random() < 0.12
            metadata = {"channel": _pick_channel(random), "gift": gift}
            if random() < 0.3:
                coupon, percent_off = COUPONS[int(random() * len(COUPONS))]
                metadata["coupon"] = coupon
                cents = max(1, cents * (100 - percent_off) // 100)

        address: dict[str, str] | None = None
        if physical and random() < 0.97:
            address = make_address(random)[1] if gift or random() < 0.08 else homes[buyer]

        status = forced.get(index)
        if status is None:
            if created < fresh:
                status = _pick_old_status(random)
            else:
                status = _pick_recent_status(random) if created >= recent else _pick_fresh_status(random)
        created_text = stamp(created)
        low, high = _STATUS_DELAY[status]
        updated_text = (
            stamp(max(created, min(end - 1, created + low + int(random() * (high - low))))) if high else created_text
        )

        orders.append(
            {
                "id": new_uuid(rng),
                "user_id": user_ids[buyer],
                "product_name": name,
                "quantity": quantity,
                "total_price": f"{cents // 100}.{cents % 100:02d}",
                "status": status,
                "shipping_address": address,
                "metadata": metadata,
                "order_date": created_text,
                "created_at": created_text,
                "updated_at": updated_text,
            }
        )
    return orders


# -- command line --------------------------------------------------------------


def _count(text: str) -> int:
    value = int(text)
    if value < 0:
        raise argparse.ArgumentTypeError("must be >= 0")
    return value


def _password(text: str) -> str:
    if len(text) < 8 or len(text.encode()) > MAX_PASSWORD_BYTES:
        raise argparse.ArgumentTypeError(f"must be 8 characters to {MAX_PASSWORD_BYTES} bytes")
    return text


def _rounds(text: str) -> int:
    value = int(text)
    if not 4 <= value <= 31:
        raise argparse.ArgumentTypeError("must be between 4 and 31")
    return value


def _end(text: str) -> str:
    try:
        parse_end(text)
    except ValueError as error:
        raise argparse.ArgumentTypeError(str(error)) from None
    return text


def build_parser() -> argparse.ArgumentParser:
    defaults = Options(users=0, orders=0)
    parser = argparse.ArgumentParser(
        prog="make_dataset", description="Generate a memdb seed dataset (MEMDB_SEED_FILE format) as JSON."
    )
    parser.add_argument("--users", type=_count, required=True, help="number of users, the admin included")
    parser.add_argument("--orders", type=_count, required=True, help="number of orders")
    parser.add_argument("--seed", type=int, default=defaults.seed, help="random seed (default %(default)s)")
    parser.add_argument("--output", type=Path, default=None, help="file to write (default: stdout)")
    parser.add_argument("--admin-email", default=defaults.admin_email, help="the admin's email (default %(default)s)")
    parser.add_argument(
        "--admin-password", type=_password, default=defaults.admin_password, help="the admin's password"
    )
    parser.add_argument("--password", type=_password, default=defaults.password, help="every other user's password")
    parser.add_argument(
        "--bcrypt-rounds", type=_rounds, default=defaults.bcrypt_rounds, help="bcrypt cost (default %(default)s)"
    )
    parser.add_argument(
        "--end",
        type=_end,
        default=defaults.end,
        help="timestamps cover the two years before this (default %(default)s)",
    )
    parser.add_argument("--indent", action="store_true", help="pretty-print with two-space indentation")
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    if args.users < 1:
        parser.error("--users must be at least 1 (the first user is the admin)")
    began = time.perf_counter()
    dataset = generate(
        Options(
            users=args.users,
            orders=args.orders,
            seed=args.seed,
            admin_email=args.admin_email,
            admin_password=args.admin_password,
            password=args.password,
            bcrypt_rounds=args.bcrypt_rounds,
            end=args.end,
        )
    )
    generated = time.perf_counter()
    options = orjson.OPT_APPEND_NEWLINE | (orjson.OPT_INDENT_2 if args.indent else 0)
    payload = orjson.dumps(dataset, option=options)
    serialised = time.perf_counter()
    if args.output is None:
        sys.stdout.buffer.write(payload)
        sys.stdout.buffer.flush()
    else:
        args.output.write_bytes(payload)
    written = time.perf_counter()
    print(
        f"make_dataset: {args.users:,} users, {args.orders:,} orders, {len(payload):,} bytes in"
        f" {written - began:.1f}s (generate {generated - began:.1f}s, serialise {serialised - generated:.1f}s,"
        f" write {written - serialised:.1f}s)",
        file=sys.stderr,
    )
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
