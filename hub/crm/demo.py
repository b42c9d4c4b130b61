"""Russian demo data for a newcomer (``crmhub demo-data``).

Everything goes through the core's service functions, so the data passes the same validation as the
API's input; the whole fill is one transaction (an empty database stays empty if anything fails).
The content is deterministic (a seeded random generator); dates are relative to now.

Users: admin/admin (admin), manager/manager (manager), agent1/agent1 and agent2/agent2 (agents on
extensions 101 and 102). A user that exists already is left as it is (its password is not touched).

The inbox is not empty: a dozen conversations are taken in as the channels would take them
(``hub.crm.messages.take_message``, no channel connected): Telegram chats and SMS with demo clients,
two unknown people (leads in Unsorted), letters (a subject, a reply with its quoted history folded, one
with an attachment when ``attachments_dir`` is given, a mailing kept out of the timeline), and the
agents' replies with their delivery statuses (delivered, sent, failed).
"""

from __future__ import annotations

import math
import random
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

from sqlalchemy import func, select, update

from hub.crm import phones as phone_numbers
from hub.crm.models import (
    Client,
    ContactPerson,
    ContactPoint,
    Deal,
    Lead,
    Setting,
    Stage,
    Task,
    TimelineEntry,
    User,
)
from hub.crm.validate import iso

SETTING_KEY = "demo_data"
SEED = 20_261_124


class NotEmpty(Exception):
    """Demo data goes only into a database without clients."""


@dataclass
class Summary:
    # login, password (None: the user existed), role, extensions
    users: list[dict[str, Any]] = field(default_factory=list)
    clients: int = 0
    contacts: int = 0
    leads: int = 0
    deals: int = 0
    deals_by_stage: dict[str, int] = field(default_factory=dict)
    tasks: int = 0
    notes: int = 0
    conversations: int = 0
    recordings: list[str] = field(default_factory=list)  # the answered calls' recordings (base names)
    seconds: float = 0.0


DEMO_USERS = [
    # login, name, role, extensions
    ("admin", "Администратор", "admin", []),
    ("manager", "Ольга Смирнова", "manager", []),
    ("agent1", "Иван Петров", "agent", ["101"]),
    ("agent2", "Мария Кузнецова", "agent", ["102"]),
]

# city, INN region code, tax office codes, landline area codes
REGIONS = [
    ("Москва", "77", ("01", "02", "03", "05", "07", "10", "14", "19", "24", "28"), ("495", "499")),
    ("Санкт-Петербург", "78", ("01", "02", "05", "10", "13", "16", "25"), ("812",)),
    ("Казань", "16", ("55", "56", "57", "59"), ("843",)),
    ("Новосибирск", "54", ("01", "02", "03", "05", "06", "07"), ("383",)),
    ("Екатеринбург", "66", ("58", "59", "60", "61", "70", "71"), ("343",)),
    ("Нижний Новгород", "52", ("53", "56", "57", "59", "60", "62"), ("831",)),
    ("Краснодар", "23", ("08", "09", "10", "11", "12"), ("861",)),
    ("Ростов-на-Дону", "61", ("61", "62", "63", "64", "65"), ("863",)),
]
MOBILE_CODES = ("903", "905", "906", "909", "910", "915", "916", "917", "919", "921", "925", "926",
                "929", "951", "952", "960", "961", "962", "963", "964", "965", "977", "981", "985", "999")
INDUSTRIES = ("Розничная торговля", "Оптовая торговля", "Строительство", "IT и телеком", "Производство",
              "Логистика", "Гостиницы и рестораны", "Медицина", "Образование", "Сельское хозяйство")
TAGS = ("VIP", "Опт", "Розница", "Постоянный", "Тендер", "Партнёр", "Новый")
COMPANY_WORDS = (
    ("Ромашка", "romashka"), ("Вектор", "vector"), ("Техносфера", "technosfera"),
    ("Северный ветер", "sever-veter"), ("СтройМонтаж", "stroymontazh"), ("Заря", "zarya-agro"),
    ("Волжские просторы", "volga-prostor"), ("Альфа-Логистик", "alfa-logistic"), ("Меридиан", "meridian"),
    ("ТехноПарк", "technopark"), ("Горизонт", "gorizont"), ("Сибирский хлеб", "sibhleb"),
    ("Уральские сети", "uralseti"), ("Кубань-Агро", "kuban-agro"), ("Дон-Транс", "don-trans"),
    ("Медтехника Плюс", "medtech-plus"), ("Эталон", "etalon"), ("Нева-Сервис", "neva-service"),
    ("Кама Трейд", "kama-trade"), ("Добрый дом", "dobdom"), ("Полимер", "polimer"),
    ("Фрегат", "fregat"), ("Гранит", "granit"), ("Светоч", "svetoch"), ("Весна", "vesna-opt"),
    ("Инфосистемы", "infosys"), ("ЭкоПродукт", "ecoproduct"), ("Балтика-Снаб", "baltsnab"),
    ("Старт", "start-msk"), ("Атлант", "atlant"),
)
LEGAL_FORMS = (
    ("ООО", "Общество с ограниченной ответственностью"),
    ("ООО", "Общество с ограниченной ответственностью"),
    ("ООО", "Общество с ограниченной ответственностью"),
    ("АО", "Акционерное общество"),
    ("ПАО", "Публичное акционерное общество"),
)
# (male first name, female first name, patronymic root → -ович/-овна forms)
FIRST_NAMES = [("Александр", "Анна"), ("Сергей", "Елена"), ("Дмитрий", "Ольга"), ("Андрей", "Наталья"),
               ("Алексей", "Татьяна"), ("Максим", "Ирина"), ("Владимир", "Светлана"), ("Николай", "Юлия"),
               ("Михаил", "Екатерина"), ("Игорь", "Марина"), ("Павел", "Анастасия"), ("Евгений", "Дарья")]
PATRONYMICS = [("Александрович", "Александровна"), ("Сергеевич", "Сергеевна"), ("Дмитриевич", "Дмитриевна"),
               ("Андреевич", "Андреевна"), ("Викторович", "Викторовна"), ("Игоревич", "Игоревна"),
               ("Николаевич", "Николаевна"), ("Петрович", "Петровна"), ("Владимирович", "Владимировна")]
SURNAMES = [("Иванов", "Иванова"), ("Смирнов", "Смирнова"), ("Кузнецов", "Кузнецова"), ("Попов", "Попова"),
            ("Васильев", "Васильева"), ("Соколов", "Соколова"), ("Михайлов", "Михайлова"),
            ("Новиков", "Новикова"), ("Фёдоров", "Фёдорова"), ("Морозов", "Морозова"), ("Волков", "Волкова"),
            ("Алексеев", "Алексеева"), ("Лебедев", "Лебедева"), ("Семёнов", "Семёнова"),
            ("Егоров", "Егорова"), ("Павлов", "Павлова"), ("Козлов", "Козлова"), ("Степанов", "Степанова"),
            ("Николаев", "Николаева"), ("Орлов", "Орлова"), ("Андреев", "Андреева"),
            ("Макаров", "Макарова"), ("Захаров", "Захарова"), ("Зайцев", "Зайцева"),
            ("Богданов", "Богданова"), ("Яковлев", "Яковлева"), ("Белов", "Белова"),
            ("Григорьев", "Григорьева"), ("Романов", "Романова"), ("Ковальский", "Ковальская"),
            ("Гарипов", "Гарипова"), ("Хабибуллин", "Хабибуллина")]
POSITIONS = ("Генеральный директор", "Коммерческий директор", "Главный бухгалтер", "Менеджер по закупкам",
             "Офис-менеджер", "Главный инженер", "Руководитель отдела снабжения", "Юрист")
DEAL_TITLES = (
    "Поставка офисной мебели", "Внедрение CRM", "Обслуживание кондиционеров", "Поставка ноутбуков",
    "Аренда спецтехники", "Разработка сайта", "Годовой договор на клининг", "Поставка стройматериалов",
    "Монтаж видеонаблюдения", "Бухгалтерское сопровождение", "Поставка медицинского оборудования",
    "Организация корпоратива", "Грузоперевозки по России", "Поставка спецодежды", "Ремонт офиса",
    "Подключение IP-телефонии", "Обучение персонала", "Поставка продуктов питания", "Аудит ИТ-инфраструктуры",
    "Лицензии 1С", "Печать рекламной продукции", "Техническое обслуживание автопарка",
)
RESULTS = ("Клиент подтвердил интерес, просил прислать презентацию",
           "Провели встречу, обсудили объём и сроки",
           "Выслали коммерческое предложение, клиент изучает",
           "Согласовали цену со скидкой 5%",
           "Договор подписан, ждём предоплату",
           "Созвонились, уточнили техническое задание")
NEXT_NOTES = ("Перезвонить и уточнить решение", "Отправить КП", "Встреча в офисе клиента",
              "Согласовать договор с юристом", "Уточнить сроки поставки", "Напомнить об оплате счёта",
              "Провести демонстрацию")
NOTES = ("Клиент просил связываться после 14:00 по Москве.",
         "ЛПР — коммерческий директор, бухгалтер согласует только оплату.",
         "Работают с конкурентом, недовольны сроками поставки.",
         "Бюджет утверждается в конце квартала.",
         "Нужны закрывающие документы в ЭДО (Диадок).",
         "Важно: доставка только в будние дни до 17:00.",
         "Попросили счёт с НДС 20%.",
         "Интересуются рассрочкой платежа на 3 месяца.")
TASK_SUBJECTS = ("Позвонить и уточнить потребность", "Подготовить коммерческое предложение",
                 "Отправить счёт на оплату", "Согласовать договор", "Провести демонстрацию",
                 "Встреча в офисе клиента", "Собрать закрывающие документы", "Уточнить реквизиты")
MESSAGES_IN = ("Добрый день! Пришлите, пожалуйста, счёт.", "Здравствуйте, а когда будет поставка?",
               "Спасибо, КП получили, вернёмся с ответом до пятницы.", "Можно ли перенести встречу на среду?")
LEAD_SOURCES = ("сайт", "звонок", "telegram", "выставка")
LOSS_REASONS = ("Дорого", "Выбрал конкурента", "Нет потребности", "Не удалось связаться", "Другое")
# How the ~100 deals spread over the seven stages of the default pipeline (in stage order).
STAGE_COUNTS = (20, 16, 14, 12, 10, 14, 14)
TRANSLIT = dict(zip("абвгдеёжзийклмнопрстуфхцчшщъыьэюя",
                    ["a", "b", "v", "g", "d", "e", "e", "zh", "z", "i", "y", "k", "l", "m", "n", "o", "p",
                     "r", "s", "t", "u", "f", "kh", "ts", "ch", "sh", "sch", "", "y", "", "e", "yu", "ya"],
                    strict=True))


def translit(text: str) -> str:
    return "".join(TRANSLIT.get(ch, ch) for ch in text.lower() if ch.isalnum() or ch in TRANSLIT)


# --- valid Russian codes -------------------------------------------------------------------------

def _control(digits: list[int], weights: tuple[int, ...]) -> int:
    return sum(d * w for d, w in zip(digits, weights, strict=False)) % 11 % 10


def inn10(rng: random.Random, prefix: str) -> str:
    """A 10-digit company INN with a valid check digit; ``prefix`` = region + tax office (4 digits)."""
    d = [int(c) for c in prefix] + [rng.randrange(10) for _ in range(5)]
    d.append(_control(d, (2, 4, 10, 3, 5, 9, 4, 6, 8)))
    return "".join(map(str, d))


def inn12(rng: random.Random, prefix: str) -> str:
    """A 12-digit INN of a person or sole trader with both check digits valid."""
    d = [int(c) for c in prefix] + [rng.randrange(10) for _ in range(6)]
    d.append(_control(d, (7, 2, 4, 10, 3, 5, 9, 4, 6, 8)))
    d.append(_control(d, (3, 7, 2, 4, 10, 3, 5, 9, 4, 6, 8)))
    return "".join(map(str, d))


# --- the generator --------------------------------------------------------------------------------

class _Gen:
    def __init__(self, rng: random.Random, region: str) -> None:
        self.rng = rng
        self.region = region
        self.phones: set[str] = set()
        self.emails: set[str] = set()
        self.inns: set[str] = set()

    def person(self) -> tuple[str, str, str, str]:
        """(full name "Фамилия Имя Отчество", first name, surname, gender)."""
        rng = self.rng
        female = rng.random() < 0.45
        g = 1 if female else 0
        first = rng.choice(FIRST_NAMES)[g]
        surname = rng.choice(SURNAMES)[g]
        patronymic = rng.choice(PATRONYMICS)[g]
        return f"{surname} {first} {patronymic}", first, surname, "f" if female else "m"

    def _unique_phone(self, make: Callable[[], str]) -> str:
        for _ in range(1000):
            digits10 = make()
            e164 = "+7" + digits10
            if e164 in self.phones:
                continue
            try:
                if phone_numbers.normalize(e164, self.region) != e164:
                    continue
            except ValueError:
                continue
            self.phones.add(e164)
            return digits10
        raise RuntimeError("could not make a unique phone number")

    def mobile(self) -> str:
        """A mobile number in one of the formats people type."""
        rng = self.rng
        d = self._unique_phone(lambda: rng.choice(MOBILE_CODES) + f"{rng.randrange(10**7):07d}")
        style = rng.randrange(4)
        if style == 0:
            return f"+7 {d[:3]} {d[3:6]}-{d[6:8]}-{d[8:]}"
        if style == 1:
            return f"8 ({d[:3]}) {d[3:6]}-{d[6:8]}-{d[8:]}"
        if style == 2:
            return f"+7{d}"
        return f"8{d}"

    def landline(self, area_codes: tuple[str, ...]) -> str:
        rng = self.rng
        d = self._unique_phone(lambda: rng.choice(area_codes) + str(rng.randrange(2, 10))
                               + f"{rng.randrange(10**6):06d}")
        return f"+7 ({d[:3]}) {d[3:6]}-{d[6:8]}-{d[8:]}"

    def email(self, local: str, domain: str) -> str:
        local = local.strip(".-") or "info"
        candidate = f"{local}@{domain}"
        n = 1
        while candidate in self.emails:
            n += 1
            candidate = f"{local}{n}@{domain}"
        self.emails.add(candidate)
        return candidate

    def personal_email(self, first: str, surname: str) -> str:
        rng = self.rng
        domain = rng.choice(("mail.ru", "yandex.ru", "gmail.com", "bk.ru", "inbox.ru"))
        first_l, surname_l = translit(first), translit(surname)
        local = rng.choice((f"{first_l}.{surname_l}", f"{surname_l}{rng.randrange(70, 99)}",
                            f"{first_l[0]}.{surname_l}"))
        return self.email(local, domain)

    def inn(self, length: int, region_code: str, offices: tuple[str, ...]) -> str:
        while True:
            prefix = region_code + self.rng.choice(offices)
            value = inn10(self.rng, prefix) if length == 10 else inn12(self.rng, prefix)
            if value not in self.inns:
                self.inns.add(value)
                return value


# --- the fill -------------------------------------------------------------------------------------

async def fill(database: Any, *, region: str = "RU", seed: int = SEED,
               attachments_dir: str | Path | None = None) -> Summary:
    """Fill an empty database; ``NotEmpty`` when it has clients already. ``attachments_dir``: where the
    demo letter's attachment is stored (without it, that letter comes without its file)."""
    started = time.perf_counter()
    async with database.reading() as s:
        count = await s.scalar(select(func.count()).select_from(Client))
    if count:
        raise NotEmpty(f"the database has {count} client{'s' if count != 1 else ''} already; "
                       "demo data goes only into an empty database")
    summary = Summary()
    async with database.transaction() as s:
        await _fill(s, random.Random(seed), region, summary)
        summary.conversations = await _conversations(s, region, attachments_dir)
    summary.seconds = time.perf_counter() - started
    return summary


async def _fill(s: Any, rng: random.Random, region: str, summary: Summary) -> None:
    from hub.crm import clients, contacts, deals, leads, pipelines, tasks, timeline, users

    now = datetime.now(UTC).replace(microsecond=0)
    gen = _Gen(rng, region)

    # Users -----------------------------------------------------------------------------------------
    people: dict[str, User] = {}
    created_logins = []
    for login, name, role, extensions in DEMO_USERS:
        existing = await s.scalar(select(User).where(User.login == login))
        if existing is None:
            made = await users.create_or_update_user(s, login, login, role, name=name,  # demo only:
                                                     extensions=extensions, language="ru",
                                                     check_policy=False)  # password = login
            existing = await s.get(User, made["id"])
            created_logins.append({"login": login, "password": login, "role": role})
            password: str | None = login
        else:
            password = None
        people[login] = existing
        summary.users.append({"login": login, "password": password, "role": existing.role,
                              "extensions": extensions})
    admin, manager = people["admin"], people["manager"]
    staff = [people["manager"], people["agent1"], people["agent2"]]
    agents = [people["agent1"], people["agent2"]]

    # Clients and their contact persons ---------------------------------------------------------------
    client_rows: list[dict[str, Any]] = []  # {"id", "manager", "contacts": [ids], "name"}
    words = list(COMPANY_WORDS)
    rng.shuffle(words)
    plan = ["company"] * 26 + ["sole"] * 6 + ["person"] * 18
    rng.shuffle(plan)
    for kind in plan:
        city, region_code, offices, area_codes = rng.choice(REGIONS)
        owner = rng.choice(staff)
        data: dict[str, Any] = {"region": city, "industry": rng.choice(INDUSTRIES), "manager_id": owner.id,
                                "tags": rng.sample(TAGS, rng.choice((0, 1, 1, 2)))}
        if kind == "company":
            word, domain_name = words.pop()
            short, long = rng.choice(LEGAL_FORMS)
            inn = gen.inn(10, region_code, offices)
            domain = f"{domain_name}.ru"
            data.update(name=f"{short} «{word}»", full_name=f"{long} «{word}»", kind="company",
                        inn=inn, kpp=inn[:4] + "01001",
                        phones=[gen.landline(area_codes)] + ([gen.mobile()] if rng.random() < 0.4 else []),
                        emails=[gen.email(rng.choice(("info", "office", "zakaz", "sales")), domain)])
        elif kind == "sole":
            full, first, surname, _g = gen.person()
            data.update(name=f"ИП {full}", full_name=f"Индивидуальный предприниматель {full}", kind="company",
                        inn=gen.inn(12, region_code, offices), phones=[gen.mobile()],
                        emails=[gen.personal_email(first, surname)])
        else:
            full, first, surname, _g = gen.person()
            data.update(name=full, full_name=full, kind="person", phones=[gen.mobile()],
                        emails=[gen.personal_email(first, surname)] if rng.random() < 0.8 else [])
            if rng.random() < 0.3:
                data["inn"] = gen.inn(12, region_code, offices)
        if rng.random() < 0.3:
            data["comment"] = rng.choice(NOTES)
        client = await clients.create_client(s, admin, data, region=region)
        row = {"id": client["id"], "manager": owner, "contacts": [], "name": data["name"],
               "domain": data["emails"][0].split("@")[1] if data.get("emails") else "mail.ru"}
        summary.clients += 1
        if kind != "person":
            count = 1 if kind == "sole" else rng.choice((1, 1, 2, 2, 3))
            positions = rng.sample(POSITIONS, count)
            for position in positions:
                full, first, surname, _g = gen.person()
                email = (gen.email(f"{translit(first)[0]}.{translit(surname)}", row["domain"])
                         if kind == "company" else gen.personal_email(first, surname))
                contact = await contacts.create_contact(s, admin, {
                    "client_id": client["id"], "name": full, "position": position,
                    "phones": [gen.mobile()], "emails": [email],
                })
                row["contacts"].append(contact["id"])
                summary.contacts += 1
        client_rows.append(row)

    # Leads -------------------------------------------------------------------------------------------
    lead_rows: list[dict[str, Any]] = []
    for i in range(15):
        full, first, surname, _g = gen.person()
        source = LEAD_SOURCES[i % len(LEAD_SOURCES)]
        unsorted = i % 3 == 0
        data = {"name": full if rng.random() < 0.7 else f"{first} ({source})", "source": source,
                "phones": [gen.mobile()]}
        if source == "telegram":
            data["telegram"] = [f"@{translit(first)}_{translit(surname)}"[:32]]
        if source in ("сайт", "выставка") or rng.random() < 0.3:
            data["emails"] = [gen.personal_email(first, surname)]
        if not unsorted:
            data["manager_id"] = rng.choice([*agents, manager]).id
        else:
            data["unsorted"] = True
        lead = await leads.create_lead(s, admin, data)
        lead_rows.append({"id": lead["id"], "manager_id": data.get("manager_id")})
        summary.leads += 1

    # Deals ---------------------------------------------------------------------------------------------
    pipeline = await pipelines.default_pipeline(s)
    stages = list((await s.execute(select(Stage).where(Stage.pipeline_id == pipeline.id)
                                   .order_by(Stage.position))).scalars())
    active = [st for st in stages if st.kind == "active"]
    won = next(st for st in stages if st.kind == "won")
    lost = next(st for st in stages if st.kind == "lost")
    summary.deals_by_stage = {st.name: 0 for st in stages}
    targets = [i for i, n in enumerate(STAGE_COUNTS) for _ in range(n)]
    rng.shuffle(targets)
    # Every deal that is not in the first stage gets there by moves (stage-change entries): one in three
    # walks the whole way from the first stage, the others were created where their last move starts.
    starts: list[Stage] = []
    paths: list[list[Stage]] = []
    for target in targets:
        if stages[target].kind == "active":
            route = active[:target + 1]
        elif stages[target] is won:
            route = [*active, won]
        else:
            route = [*active[:rng.randint(1, 4)], lost]
        cut = 0 if rng.random() < 1 / 3 else max(0, len(route) - 2)
        starts.append(route[cut])
        paths.append(route[cut + 1:])
    deal_ids: list[tuple[int, User, int | None]] = []  # (deal id, responsible, client id)
    for n, target in enumerate(targets):
        on_lead = n % 12 == 0 and lead_rows
        title = rng.choice(DEAL_TITLES)
        amount: float = rng.choice((15_000, 48_000, 120_000, 250_000, 600_000, 1_200_000, 3_500_000))
        amount = round(amount * rng.uniform(0.6, 1.6), -2)
        data = {"title": title, "pipeline_id": pipeline.id, "stage_id": starts[n].id,
                "amount": amount, "currency": "RUB",
                "tags": rng.sample(("Тендер", "Срочно", "Повторная", "Опт"), rng.choice((0, 0, 1)))}
        if on_lead:
            lead_row = lead_rows[(n // 12) % len(lead_rows)]
            data["lead_id"] = lead_row["id"]
            responsible = next((u for u in staff if u.id == lead_row["manager_id"]), rng.choice(agents))
            client_id = None
        else:
            row = rng.choice(client_rows)
            data["client_id"] = row["id"]
            data["title"] = f"{title} — {row['name']}"
            if row["contacts"]:
                data["contact_id"] = rng.choice(row["contacts"])
            responsible = row["manager"] if rng.random() < 0.7 else rng.choice(staff)
            client_id = row["id"]
        data["responsible_id"] = responsible.id
        data["next_interaction_at"] = iso(now + timedelta(days=rng.randint(1, 10), hours=rng.randint(0, 8)))
        data["next_interaction_note"] = rng.choice(NEXT_NOTES)
        deal = await deals.create_deal(s, admin, data)
        deal_id = deal["id"]
        summary.deals += 1
        stage_name = stages[target].name
        summary.deals_by_stage[stage_name] += 1

        # walk it through the pipeline the way a manager would (the path after its start stage)
        path = paths[n]
        for step, stage in enumerate(path):
            move: dict[str, Any] = {"stage_id": stage.id, "result": rng.choice(RESULTS)}
            last = step == len(path) - 1
            missed = None
            if stage.kind == "active":
                when = now + timedelta(days=rng.randint(0, 14), hours=rng.randint(1, 8))
                move["next_interaction_at"] = iso(when)
                move["next_interaction_note"] = rng.choice(NEXT_NOTES)
                if last and rng.random() < 0.3:  # overdue: the planned call did not happen
                    missed = now - timedelta(days=rng.randint(1, 6), hours=rng.randint(0, 6))
            if stage is lost:
                move["loss_reason"] = rng.choice(LOSS_REASONS)
            await deals.move_deal(s, responsible, deal_id, move)
            if missed is not None:  # planned back then, so no move would take it now: the row says so
                await s.execute(update(Deal).where(Deal.id == deal_id).values(next_interaction_at=missed))

        for _ in range(rng.choice((0, 1, 1, 2))):
            await timeline.add_note(s, responsible, "deal", deal_id, {"text": rng.choice(NOTES)})
            summary.notes += 1
        if rng.random() < 0.25:
            await timeline.add_entry(s, kind=rng.choice(("telegram", "email", "sms")), direction="in",
                                     text=rng.choice(MESSAGES_IN), deal_id=deal_id)
        deal_ids.append((deal_id, responsible, client_id))

    # Tasks ---------------------------------------------------------------------------------------------
    for i in range(40):
        deal_id, responsible, client_id = deal_ids[(i * 7) % len(deal_ids)]
        task_kind = i % 4  # 0: overdue, 1: done, 2: in progress, 3: planned
        days = timedelta(days=1)
        if task_kind == 0:
            start, due, percent = now - rng.randint(3, 9) * days, now - rng.randint(1, 2) * days, 0
        elif task_kind == 1:
            start, due, percent = now - rng.randint(5, 20) * days, now - rng.randint(1, 4) * days, 100
        elif task_kind == 2:
            start, due, percent = now - days, now + rng.randint(1, 5) * days, rng.choice((25, 50, 75))
        else:
            start, due, percent = now + days, now + rng.randint(3, 14) * days, 0
        data = {"subject": rng.choice(TASK_SUBJECTS), "description": rng.choice(NOTES),
                "start_at": iso(start), "due_at": iso(due), "percent": 80 if task_kind == 1 else percent,
                "deal_id": deal_id, "assignee_id": responsible.id}
        if client_id:
            data["client_id"] = client_id
        task = await tasks.create_task(s, manager if i % 5 == 0 else responsible, data)
        if task_kind == 1:
            await tasks.complete_task(s, responsible, task["id"])
        summary.tasks += 1

    await _backdate(s, rng, now)
    summary.recordings = await _calls(s, rng, now)
    s.add(Setting(key=SETTING_KEY, value={"logins": created_logins, "created_at": iso(now)}))
    await s.flush()


HISTORY_DAYS = 182  # the demo's history: the last six months


def _ago(rng: random.Random, days: float) -> timedelta:
    """How long ago within ``days``, the recent past more likely (a business that grows: each month
    brings more clients and leads than the one before, the last about three times the first)."""
    share = rng.random() if rng.random() < 0.5 else 1 - math.sqrt(rng.random())
    return timedelta(days=days * share, hours=rng.randint(0, 10))


def _soon_after(rng: random.Random, first: datetime, last: datetime) -> datetime:
    """A moment between the two, more likely soon after ``first`` (a deal opened soon after its
    client came)."""
    return first + (last - first) * rng.random() ** 2 if last > first else first


def _between(rng: random.Random, first: datetime, last: datetime) -> datetime:
    return first + (last - first) * rng.random() if last > first else first


async def _backdate(s: Any, rng: random.Random, now: datetime) -> None:
    """Spread the history over the last six months, in order: a client or a lead comes first, its
    deals later, each deal's timeline entries (stage changes, notes, messages) between its creation
    and its close (won or lost: ``closed_at``) or, while open, a recent day."""
    hour, day = timedelta(hours=1), timedelta(days=1)
    client_created = {cid: now - _ago(rng, HISTORY_DAYS)
                      for cid in (await s.execute(select(Client.id).order_by(Client.id))).scalars()}
    lead_created = {}
    for lead_id, unsorted in (await s.execute(select(Lead.id, Lead.unsorted).order_by(Lead.id))).all():
        lead_created[lead_id] = now - (_ago(rng, 10) if unsorted else _ago(rng, HISTORY_DAYS * 0.8))
    await _set_times(s, Client, [{"id": cid, "created_at": at, "updated_at": at}
                                 for cid, at in client_created.items()])
    await _set_times(s, Lead, [{"id": lid, "created_at": at} for lid, at in lead_created.items()])
    contacts = (await s.execute(select(ContactPerson.id, ContactPerson.client_id))).all()
    await _set_times(s, ContactPerson, [
        {"id": cid, "created_at": client_created[owner] + timedelta(minutes=rng.randint(5, 600))}
        for cid, owner in contacts if owner in client_created])

    entries = (await s.execute(select(TimelineEntry.id, TimelineEntry.deal_id, TimelineEntry.kind)
                               .where(TimelineEntry.deal_id.is_not(None))
                               .order_by(TimelineEntry.id))).all()
    by_deal: dict[int, list[tuple[int, str]]] = {}
    for entry_id, deal_id, kind in entries:
        by_deal.setdefault(deal_id, []).append((entry_id, kind))
    deal_updates, entry_updates = [], []
    for deal_id, client_id, lead_id, stage_kind in (await s.execute(
            select(Deal.id, Deal.client_id, Deal.lead_id, Stage.kind)
            .join(Stage, Stage.id == Deal.stage_id).order_by(Deal.id))).all():
        owner = client_created.get(client_id) or lead_created.get(lead_id) or now - _ago(rng, HISTORY_DAYS)
        earliest = min(owner + timedelta(hours=rng.randint(1, 72)), now - 2 * day)
        if stage_kind == "active":
            created = _soon_after(rng, earliest, now - day)
            end = max(created + hour, now - timedelta(hours=rng.randint(2, 24 * 12)))
        else:  # closed days or weeks after it was opened
            created = _soon_after(rng, earliest, now - 3 * day)
            end = min(created + timedelta(days=rng.uniform(4, 45)), now - timedelta(hours=rng.randint(2, 30)))
        ids = by_deal.get(deal_id, [])
        span = (end - created) / max(1, len(ids))
        moments = [created + span * (k + 1) for k in range(len(ids))]
        moved = created
        for (entry_id, kind), moment in zip(ids, moments, strict=True):
            entry_updates.append({"id": entry_id, "occurred_at": moment, "created_at": moment})
            if kind == "stage_change":
                moved = moment
        last = moments[-1] if moments else created
        deal_updates.append({"id": deal_id, "created_at": created, "stage_changed_at": moved,
                             "last_activity_at": last, "updated_at": last,
                             "closed_at": None if stage_kind == "active" else moved})
    await _set_times(s, Deal, deal_updates)
    await _set_times(s, TimelineEntry, entry_updates)
    # the people's own entries (not on a deal) after the person came
    own = (await s.execute(select(TimelineEntry.id, TimelineEntry.client_id, TimelineEntry.lead_id)
                           .where(TimelineEntry.deal_id.is_(None)))).all()
    own_updates = []
    for entry_id, client_id, lead_id in own:
        came = client_created.get(client_id) or lead_created.get(lead_id)
        if came is not None:
            moment = _between(rng, came, now - hour)
            own_updates.append({"id": entry_id, "occurred_at": moment, "created_at": moment})
    await _set_times(s, TimelineEntry, own_updates)
    # tasks: written a little before they start; the done ones finished before they were due, over
    # the months (half of them long ago)
    task_updates = []
    for task_id, start, due, completed in (await s.execute(
            select(Task.id, Task.start_at, Task.due_at, Task.completed_at))).all():
        values: dict[str, Any] = {"id": task_id}
        if completed is not None and start is not None and due is not None and rng.random() < 0.5:
            back = _ago(rng, HISTORY_DAYS * 0.8)
            start, due = start - back, due - back
            values.update(start_at=start, due_at=due)
        if start is not None:
            values["created_at"] = min(start, now) - timedelta(hours=rng.randint(1, 48))
        if completed is not None and due is not None:
            values["completed_at"] = min(due, now) - timedelta(hours=rng.randint(1, 20))
        task_updates.append(values)
    await _set_times(s, Task, task_updates)


async def _set_times(s: Any, model: Any, rows: list[dict[str, Any]]) -> None:
    """Bulk UPDATE by primary key (a row's ``updated_at`` stays as given, or as it was)."""
    if rows:
        await s.execute(update(model), rows)


CALLS = 50  # historical calls with the clients of the deals (about 85% answered, with a recording)


async def _calls(s: Any, rng: random.Random, now: datetime) -> list[str]:
    """The calls of the last six months with the deals' clients, taken in as the PBX reports them
    (``call_intake.end``) at the moments they happened, each logged on its deal; an answered one has
    the recording MixMonitor would have left (``crmhub demo`` puts a file there). → the recordings."""
    from hub.crm.call_intake.end import end
    from hub.crm.models import Call, UserExtension
    from hub.crm.ports import CallDirection, CallEndedFact

    extension_of = dict((await s.execute(select(UserExtension.user_id, UserExtension.extension))).all())
    phone_of: dict[int, str] = {}
    for client_id, value in (await s.execute(
            select(ContactPoint.client_id, ContactPoint.value)
            .where(ContactPoint.kind == "phone", ContactPoint.client_id.is_not(None))
            .order_by(ContactPoint.id))).all():
        phone_of.setdefault(client_id, value)
    deals = [row for row in (await s.execute(
        select(Deal.id, Deal.client_id, Deal.responsible_id, Deal.created_at, Deal.closed_at)
        .where(Deal.client_id.is_not(None)).order_by(Deal.id))).all() if row[1] in phone_of]
    if not deals or not extension_of:
        return []
    agents = sorted(set(extension_of.values()))
    recordings: list[str] = []
    placed: list[dict[str, Any]] = []
    plan = []
    for _ in range(CALLS):
        deal_id, client_id, responsible_id, created, closed = rng.choice(deals)
        started = _between(rng, created + timedelta(hours=1), (closed or now) - timedelta(minutes=30))
        plan.append((started, deal_id, client_id, responsible_id))
    plan.sort()  # the journal's ids in the order the calls were made
    for n, (started, deal_id, client_id, responsible_id) in enumerate(plan, start=1):
        direction: CallDirection = "outbound" if rng.random() < 0.5 else "inbound"
        answered = direction == "inbound" or rng.random() < 0.7
        extension = extension_of.get(responsible_id) or rng.choice(agents)
        number = phone_of[client_id]
        # as long as the demo dialogues (12–18 s), so what the journal says is what the player plays
        wait, talk = rng.randint(3, 25), rng.randint(12, 18) if answered else 0
        key = f"demo-{n}"
        recording = (f"{direction}-{started:%Y%m%d-%H%M%S}-{number.lstrip('+')}-{extension}-{key}.wav"
                     if answered else None)
        made = await end(s, CallEndedFact(
            call_key=key, direction=direction, status="answered" if answered else "missed", number=number,
            did="+74951234567" if direction == "inbound" else None, agent_extension=extension,
            started_at=started, answered_at=started + timedelta(seconds=wait) if answered else None,
            ended_at=started + timedelta(seconds=wait + talk), wait_seconds=wait, talk_seconds=talk,
            hangup_cause=16, recording=recording, recording_extensions=(extension,) if recording else (),
            recordings=(recording,) if recording else (), rung_extensions=(extension,)))
        assert made is not None
        # logged on this deal (the call was about it), not on the client's latest open one
        placed.append({"id": made["id"], "deal_id": deal_id, "created_at": started})
        if recording:
            recordings.append(recording)
    await _set_times(s, Call, placed)
    entries = dict((await s.execute(select(Call.id, Call.timeline_entry_id)
                                    .where(Call.id.in_([p["id"] for p in placed])))).all())
    await _set_times(s, TimelineEntry, [{"id": entries[p["id"]], "deal_id": p["deal_id"]} for p in placed
                                        if entries.get(p["id"]) is not None])
    # each deal's last activity: its latest entry (the calls moved some)
    latest = (select(func.max(TimelineEntry.occurred_at)).where(TimelineEntry.deal_id == Deal.id)
              .scalar_subquery())
    await s.execute(update(Deal).values(last_activity_at=func.coalesce(latest, Deal.created_at),
                                        updated_at=Deal.updated_at)
                    .execution_options(synchronize_session=False))
    return recordings


# --- the inbox: conversations as the channels would take them in ------------------------------------

OUR_MAILBOX = "zayavki"
LETTER_HTML = (
    "<p>Добрый день!</p><p>Наша компания планирует замену окон в офисе на {address}: "
    "<b>14 окон ПВХ</b>, часть с поворотно-откидными створками, два окна с москитными сетками.</p>"
    "<table><tr><th>Помещение</th><th>Окон</th><th>Размер, мм</th></tr>"
    "<tr><td>Переговорная</td><td>4</td><td>1470 × 1420</td></tr>"
    "<tr><td>Open space</td><td>8</td><td>1470 × 1420</td></tr>"
    "<tr><td>Кабинет директора</td><td>2</td><td>1200 × 1420</td></tr></table>"
    "<p>Просим прислать коммерческое предложение с монтажом и вывозом старых рам.</p>"
    "<p>С уважением,<br>{name}</p>"
    "<p><img data-remote-src=\"https://stroyinvest.example.ru/mail/logo.png\" alt=\"Логотип\"></p>"
)
QUOTED = ("-----Исходное сообщение-----\nОт: Комфорт Дом — заявки <zayavki@crm.example.ru>\n"
          "Тема: Ваша заявка №1042 — замер окон\n\n{name}, здравствуйте!\n\nГотовы приехать на замер в "
          "субботу с 14:00 до 16:00. Подтвердите, пожалуйста, удобно ли вам.\n\n— Комфорт Дом")
ESTIMATE_PDF = (b"%PDF-1.4\n1 0 obj << /Type /Catalog /Pages 2 0 R >> endobj\n2 0 obj << /Type /Pages "
                b"/Kids [] /Count 0 >> endobj\ntrailer << /Root 1 0 R >>\n%%EOF\n")


async def _conversations(s: Any, region: str, attachments_dir: str | Path | None) -> int:
    """About twelve conversations across the channels, taken in through the CRM's message intake (as
    if the channels had delivered them over the last day), with the agents' answers and their
    statuses. → how many conversations."""
    from hub.crm import messages, outgoing
    from hub.crm.attachments import store_bytes
    from hub.crm.models import Conversation, Message
    from hub.crm.ports import DeliveryStatus, InboundFile, InboundMessage, MessageChannel

    now = datetime.now(UTC).replace(microsecond=0)
    agents = {u.login: u for u in (await s.scalars(select(User).where(User.login.in_(("agent1", "agent2")))))}
    if len(agents) < 2:
        return 0
    # the agents' clients with an open deal, a phone and an e-mail (of the client itself)
    rows = (await s.execute(
        select(Client.id, Client.name, Client.kind, Deal.responsible_id)
        .join(Deal, Deal.client_id == Client.id).join(Stage, Stage.id == Deal.stage_id)
        .where(Stage.kind == "active", Deal.responsible_id.in_([u.id for u in agents.values()]))
        .order_by(Client.id))).all()
    points: dict[int, dict[str, str]] = {}
    for client_id, kind, value in (await s.execute(
            select(ContactPoint.client_id, ContactPoint.kind, ContactPoint.value)
            .where(ContactPoint.client_id.in_([r[0] for r in rows])).order_by(ContactPoint.id))).all():
        points.setdefault(client_id, {}).setdefault(kind, value)
    people: list[dict[str, Any]] = []
    for client_id, name, kind, responsible_id in rows:
        found = points.get(client_id, {})
        if "phone" in found and "email" in found and all(p["id"] != client_id for p in people):
            user = next(u for u in agents.values() if u.id == responsible_id)
            people.append({"id": client_id, "name": name, "kind": kind, "user": user,
                           "phone": found["phone"], "email": found["email"]})
    if len(people) < 8:
        return 0
    ids: set[int] = set()

    async def take(message: InboundMessage, files: tuple[InboundFile, ...] = ()) -> dict[str, Any]:
        stored = []
        if files and attachments_dir is not None:
            stored = [(f, await store_bytes(attachments_dir, f.data)) for f in files]
        taken = await messages.take_message(s, message, stored, region)
        assert taken is not None
        ids.add(taken["conversation_id"])
        return taken

    def at(minutes: int) -> datetime:
        return now - timedelta(minutes=minutes)

    async def reply(person: dict[str, Any], channel: MessageChannel, text: str, minutes: int, status: str,
                    error: str | None = None, **extra: Any) -> dict[str, Any]:
        """An agent's answer written ``minutes`` ago, then what the channel reported about it."""
        queued = (await messages.queue_message(s, person["user"], {
            "channel": channel, "client_id": person["id"], "text": text, **extra}))[0]
        when = at(minutes)
        await s.execute(update(Message).where(Message.id == queued["id"])
                        .values(created_at=when, status_at=when))
        await s.execute(update(TimelineEntry).where(TimelineEntry.id == queued["entry_id"])
                        .values(occurred_at=when))
        await s.execute(update(Conversation).where(Conversation.id == queued["conversation_id"])
                        .values(last_message_at=when))
        provider_id = (f"<demo-out-{queued['id']}@crm.example.ru>" if channel == "email"
                       else f"SMdemo{queued['id']:06d}" if channel == "sms" else f"demo:{queued['id']}")
        if status == "failed":
            await outgoing.record_outcome(s, queued["id"], "failed", error=error)
        else:
            await outgoing.record_outcome(s, queued["id"], "sent", provider_id=provider_id)
            if status == "delivered":
                await messages.apply_status(s, DeliveryStatus(channel=channel, provider_id=provider_id,
                                                              status="delivered", at=when))
        ids.add(queued["conversation_id"])
        return {**queued, "provider_id": provider_id}

    async def telegram_id(person: dict[str, Any], chat: str) -> None:
        s.add(ContactPoint(kind="telegram_id", value=chat, raw=chat, client_id=person["id"]))
        await s.flush()

    def tg(chat: str, n: int, text: str, minutes: int, name: str,
           username: str | None = None) -> InboundMessage:
        return InboundMessage(channel="telegram", provider_id=f"{chat}:{n}", address=chat, text=text,
                              sender_name=name, sender_id=chat, username=username, at=at(minutes))

    def sms(sid: str, phone: str, text: str, minutes: int) -> InboundMessage:
        return InboundMessage(channel="sms", provider_id=sid, address=phone, text=text, sender_name=phone,
                              at=at(minutes), to_address="+74951234567")

    def letter(person: dict[str, Any], n: int, subject: str, text: str, minutes: int,
               **extra: Any) -> InboundMessage:
        return InboundMessage(channel="email", provider_id=f"<demo-in-{n}@{person['email'].split('@')[1]}>",
                              address=person["email"], sender_name=person["name"], subject=subject,
                              text=text, at=at(minutes), mailbox=OUR_MAILBOX,
                              to_address="zayavki@crm.example.ru", **extra)

    p = people
    # Telegram with clients (the chats were linked when they shared their phone with the bot)
    await telegram_id(p[0], "6149027731")
    await take(tg("6149027731", 1, "Здравствуйте! Хочу заказать замер пластиковых окон в квартире, три окна. "
                  "Когда сможете приехать?", 300, p[0]["name"], "client_one"))
    await reply(p[0], "telegram", "Добрый день! Можем в субботу с 10:00 до 12:00 или в понедельник "
                "после 17:00. "
                "Как вам удобнее?", 290, "sent")
    await take(tg("6149027731", 2, "Суббота подходит. Подъезд со двора, домофон 45.", 280, p[0]["name"]))
    await telegram_id(p[1], "7125590348")
    await take(tg("7125590348", 1, "Добрый день. После монтажа на балконе остался мусор и плёнка на "
                  "стеклопакетах. Можно прислать кого-нибудь?", 95, p[1]["name"]))
    await reply(p[1], "telegram", "Приносим извинения! Бригада приедет завтра до 12:00 и всё уберёт.", 80,
                "sent")
    await take(tg("7125590348", 2, "Хорошо, спасибо 👍", 78, p[1]["name"]))
    # two more clients on Telegram, silent so far: ``crmhub demo``'s simulated Telegram plays them
    # (hub.messengers.simulator.DEMO_PEOPLE, the same ids)
    await telegram_id(p[2], "6873401592")
    await telegram_id(p[3], "5731946208")
    # SMS with clients
    await reply(p[2], "sms", "Комфорт Дом: напоминаем, замер окон завтра в 11:00, мастер Алексей. "
                "Ответьте 1 для подтверждения.", 600, "delivered")
    await take(sms("SMdemoIn0001", p[2]["phone"], "1. Ждём, код домофона 17В", 560))
    await take(sms("SMdemoIn0002", p[3]["phone"], "Перезвоните, пожалуйста, по поводу откосов и "
                   "подоконников — хотим добавить к заказу", 140))
    await reply(p[3], "sms", "Здравствуйте! Менеджер перезвонит сегодня до 18:00.", 130, "failed",
                error="Twilio error 30003: Unreachable destination handset")
    await take(sms("SMdemoIn0003", p[4]["phone"], "Окна поставили, всё отлично, спасибо мастерам! "
                   "Счёт за москитные сетки пришлите на почту.", 25))
    # two unknown people → leads in Unsorted
    await take(tg("5290183746", 1, "Здравствуйте! Сколько стоит остеклить балкон 3 метра в хрущёвке? "
                  "Тёплое остекление, с отделкой.", 50, "Дмитрий Лебедев", "dlebedev"))
    await take(tg("5290183746", 2, "И сколько по времени занимает изготовление?", 49, "Дмитрий Лебедев"))
    await take(sms("SMdemoIn0004", "+79263418805", "Добрый день, нужна москитная сетка на 2 окна, "
                   "размеры 60×130. Сколько будет стоить?", 12))
    # letters: a new request with its HTML, a reply to ours with the quote, one with an attachment
    await take(letter(p[5], 1, "Запрос КП: замена 14 окон в офисе",
                      "Добрый день!\n\nНаша компания планирует замену окон в офисе: 14 окон ПВХ, часть с "
                      "поворотно-откидными створками, два окна с москитными сетками.\nПросим прислать "
                      "коммерческое предложение с монтажом и вывозом старых рам.\n\nС уважением,\n"
                      + p[5]["name"], 220,
                      html=LETTER_HTML.format(address="ул. Ленина, 15", name=p[5]["name"]),
                      extra={"remote_images": True}))
    ours = await reply(p[6], "email", "Здравствуйте!\n\nГотовы приехать на замер в субботу с 14:00 до 16:00. "
                       "Подтвердите, пожалуйста, удобно ли вам.\n\n— Комфорт Дом", 420, "sent",
                       subject="Ваша заявка №1042 — замер окон")
    new_text = "Да, суббота подходит. Подъезд со двора, домофон 45, третий этаж.\nПозвоните, пожалуйста, " \
               "за полчаса до приезда."
    await take(letter(p[6], 2, "RE: Ваша заявка №1042 — замер окон", new_text, 70,
                      full_text=new_text + "\n\n" + QUOTED.format(name=p[6]["name"]),
                      thread_ids=(ours["provider_id"],), lead_allowed=False))
    await take(letter(p[7], 3, "Смета на остекление — сравните, пожалуйста",
                      "Здравствуйте! Нам прислали смету на остекление балкона и замену двух окон. Сможете "
                      "предложить дешевле при тех же окнах? Смета во вложении.", 35),
               (InboundFile(filename="Смета №1042 на остекление балкона.pdf", content_type="application/pdf",
                            data=ESTIMATE_PDF),))
    await reply(p[7], "email", "Добрый день! Посчитаем до конца дня и пришлём наше предложение.", 30,
                "failed", error=f"{p[7]['email']}: 552 5.2.2 Mailbox full", subject="Re: Смета на остекление")
    # a mailing: kept out of the timeline, no lead (the agent may make one by hand)
    await take(InboundMessage(channel="email", provider_id="<news-2611@okna-opt.example.ru>",
                              address="noreply@okna-opt.example.ru", sender_name="Оконный опт",
                              subject="Новый прайс на профиль и фурнитуру с 1 декабря",
                              text="Уважаемые партнёры! С 1 декабря меняются цены на профиль REHAU и "
                              "фурнитуру Roto. Прайс-лист во вложении личного кабинета.", at=at(15),
                              mailbox=OUR_MAILBOX, lead_allowed=False,
                              extra={"automated": ["Precedence: bulk", "List-Unsubscribe header"]}))
    # the older conversations have been read; the four newest wait
    newest = select(Conversation.id).order_by(Conversation.last_message_at.desc()).limit(4)
    await s.execute(update(Conversation).where(Conversation.id.not_in(newest)).values(unread=0))
    return len(ids)


def describe(summary: Summary) -> str:
    """What the CLI prints after a fill."""
    lines = [
        f"demo data created in {summary.seconds:.1f} s: {summary.clients} clients, "
        f"{summary.contacts} contact persons, {summary.leads} leads, {summary.deals} deals, "
        f"{summary.tasks} tasks, {summary.notes} notes, {summary.conversations} conversations in the inbox",
        "deals by stage: " + ", ".join(f"{name} {n}" for name, n in summary.deals_by_stage.items()),
        "log in as:",
    ]
    for user in summary.users:
        ext = f", extension {', '.join(user['extensions'])}" if user["extensions"] else ""
        secret = user["password"] if user["password"] is not None else "(existing user, password unchanged)"
        lines.append(f"  {user['login']} / {secret}   ({user['role']}{ext})")
    return "\n".join(lines)


async def client_phones(session: Any, limit: int = 500) -> list[str]:
    """Phone numbers of clients (E.164): the callers the demo PBX (``crmhub demo``) rings with."""
    rows = await session.scalars(
        select(ContactPoint.value).where(ContactPoint.kind == "phone", ContactPoint.client_id.is_not(None))
        .order_by(ContactPoint.id).limit(limit))
    return list(rows)


async def sms_people(session: Any, at_least: int = 4) -> list[tuple[str, bool]]:
    """The phones ``crmhub demo``'s simulated SMS people write from, with whether each is a client's
    (else a lead's): those of the SMS conversations with a client or a lead (the demo data has four),
    then other clients' mobiles until there are ``at_least``."""
    from hub.crm.models import Conversation

    rows = (await session.execute(
        select(Conversation.address, Conversation.client_id)
        .where(Conversation.channel == "sms",
               (Conversation.client_id.is_not(None)) | (Conversation.lead_id.is_not(None)))
        .order_by(Conversation.id))).all()
    people = [(address, client_id is not None) for address, client_id in rows]
    if len(people) < at_least:
        taken = {phone for phone, _ in people}
        mobiles = [n for n in await client_phones(session) if n.startswith("+79") and n not in taken]
        people += [(phone, True) for phone in mobiles[:at_least - len(people)]]
    return people


async def call_recordings(session: Any) -> list[str]:
    """The recordings of every call (base names), in the order the calls were made: ``crmhub demo``
    leaves a demo dialogue for each one whose file is missing."""
    from hub.crm.calls import recording_basename, recordings_of
    from hub.crm.models import Call

    names: list[str] = []
    for call in await session.scalars(select(Call).where(Call.recording.is_not(None)).order_by(Call.id)):
        names += [n for n in (recording_basename(r["file"]) for r in recordings_of(call)) if n]
    return names
