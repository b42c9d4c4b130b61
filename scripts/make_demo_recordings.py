"""Synthesise the demo PBX's call recordings: short Russian dialogues between an agent of «Комфорт Дом»
and a client, as MixMonitor would leave them (WAV, 8 kHz, 16-bit, mono).

The files are shipped in the package (``hub/telephony/demo_recordings/``); ``crmhub demo`` links one of
them to each answered call's recording (``hub.telephony.simulator.leave_recording``). The hub never
runs this script: it is here to remake the clips after changing a dialogue. It needs ``espeak-ng``
(``apt-get install espeak-ng``) and writes over the shipped files:

    .venv/bin/python scripts/make_demo_recordings.py
"""

from __future__ import annotations

import array
import io
import shutil
import subprocess
import sys
import wave
from pathlib import Path

OUT = Path(__file__).resolve().parent.parent / "hub" / "telephony" / "demo_recordings"
RATE = 8000
PAUSE = 0.35  # seconds of silence between two lines
AGENT = ["-v", "ru", "-s", "165", "-p", "40"]
CLIENT = ["-v", "ru+f3", "-s", "170", "-p", "65"]

# file stem → the lines, the agent's first on an inbound call, the client's answer first on an outbound
DIALOGUES: dict[str, list[str]] = {
    "inbound-1": [
        "Комфорт Дом, здравствуйте! Чем могу помочь?",
        "Добрый день! Хочу заказать замер пластиковых окон, три окна в квартире.",
        "Конечно. Можем приехать в субботу с десяти до двенадцати. Вам удобно?",
        "Да, суббота подходит. Подъезд со двора.",
    ],
    "inbound-2": [
        "Комфорт Дом, добрый день!",
        "Здравствуйте. Подскажите, когда будет поставка по нашему заказу?",
        "Окна уже на складе, привезём в четверг до обеда.",
        "Отлично, спасибо, будем ждать.",
    ],
    "inbound-3": [
        "Комфорт Дом, слушаю вас.",
        "Сколько стоит тёплое остекление балкона три метра?",
        "Около шестидесяти тысяч рублей с монтажом. Пришлю расчёт на почту.",
        "Хорошо, присылайте, посмотрим.",
    ],
    "outbound-1": [
        "Алло, слушаю.",
        "Добрый день! Это Комфорт Дом. Вы получили наше коммерческое предложение?",
        "Да, получили. Обсудим с директором и ответим до пятницы.",
        "Хорошо, тогда созвонимся в пятницу. Всего доброго!",
    ],
    "outbound-2": [
        "Да, здравствуйте.",
        "Здравствуйте! Напоминаю про оплату счёта за москитные сетки.",
        "Бухгалтерия оплатит сегодня, пришлю платёжку.",
        "Спасибо, до свидания!",
    ],
    "outbound-3": [
        "Алло.",
        "Добрый день, Комфорт Дом. Мастер приедет на монтаж завтра в одиннадцать.",
        "Хорошо, будем дома. Позвоните за полчаса, пожалуйста.",
        "Обязательно. Хорошего дня!",
    ],
}


def speak(voice: list[str], text: str) -> array.array:
    """``text`` spoken by espeak-ng, as 16-bit samples at ``RATE``."""
    wav = subprocess.run(["espeak-ng", *voice, "--stdout", text], check=True, capture_output=True).stdout
    with wave.open(io.BytesIO(wav)) as w:
        rate = w.getframerate()
        samples = array.array("h", w.readframes(w.getnframes()))
    if sys.byteorder == "big":
        samples.byteswap()
    return resample(samples, rate, RATE)


def resample(samples: array.array, rate: int, target: int) -> array.array:
    """Down to ``target`` Hz: a moving average as the low-pass, then linear interpolation."""
    width = max(1, round(rate / target))
    smooth = [sum(samples[max(0, i - width + 1):i + 1]) / min(width, i + 1) for i in range(len(samples))]
    step = rate / target
    out = array.array("h")
    position = 0.0
    while position < len(smooth) - 1:
        i = int(position)
        frac = position - i
        value = smooth[i] * (1 - frac) + smooth[i + 1] * frac
        out.append(max(-32768, min(32767, int(value * 0.9))))
        position += step
    return out


def dialogue(stem: str, lines: list[str]) -> array.array:
    agent_first = stem.startswith("inbound")
    silence = array.array("h", [0] * int(PAUSE * RATE))
    out = array.array("h", silence)
    for n, line in enumerate(lines):
        agent = (n % 2 == 0) == agent_first
        out += speak(AGENT if agent else CLIENT, line) + silence
    return out


def main() -> int:
    if shutil.which("espeak-ng") is None:
        print("espeak-ng is needed: apt-get install espeak-ng", file=sys.stderr)
        return 1
    OUT.mkdir(parents=True, exist_ok=True)
    for old in OUT.glob("*.wav"):
        old.unlink()
    total = 0
    for stem, lines in DIALOGUES.items():
        samples = dialogue(stem, lines)
        if sys.byteorder == "big":
            samples.byteswap()
        path = OUT / f"{stem}.wav"
        with wave.open(str(path), "wb") as w:
            w.setnchannels(1)
            w.setsampwidth(2)
            w.setframerate(RATE)
            w.writeframes(samples.tobytes())
        total += path.stat().st_size
        print(f"{path.relative_to(OUT.parent.parent.parent)}: {len(samples) / RATE:.1f} s")
    print(f"{len(DIALOGUES)} recordings, {total / 1024:.0f} KiB")
    return 0


if __name__ == "__main__":
    sys.exit(main())
