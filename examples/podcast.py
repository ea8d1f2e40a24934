"""A two-voice podcast, offline: the bundled Piper voice for the host and, when an OpenAI key (or the emulator) is
set, an OpenAI voice for the guest; one MP3 with a chapter a turn.

    python examples/podcast.py OUT_FOLDER
"""

import os
import sys
from pathlib import Path

import genai_sdk as genai

SCRIPT = [
    ("host", "Welcome back to Kitchen Science. Today we ask why avocados turn brown."),
    ("guest", "It is an enzyme: once the flesh meets the air, it browns within minutes."),
    ("host", "So lemon juice really helps?"),
    ("guest", "It does. The acid slows the enzyme down."),
]

out = Path(sys.argv[1] if len(sys.argv) > 1 else ".")
voices = {"host": "piper:en_US-joe-medium"}
voices["guest"] = "openai:tts-1@nova" if os.environ.get("OPENAI_API_KEY") else "piper:en_US-joe-medium"
with genai.Client(ledger="memory://") as client:
    show = client.speech.synthesize_dialogue(SCRIPT, voices=voices, pause=0.6, format="mp3")
path = show.audio.save(out / "kitchen-science.mp3")
for turn in show.turns:
    print(f"{turn.start:.2f}-{turn.end:.2f} {turn.speaker} ({turn.model}): {turn.text}")
print(f"{path.name}: {show.audio.duration:.1f} s, cost {show.cost}")
