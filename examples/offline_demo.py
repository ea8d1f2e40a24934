"""The main job, offline: the avocado-couch example run against the built-in emulator of the OpenAI API.

    python examples/offline_demo.py [output folder]
"""

import os
import runpy
import sys
from pathlib import Path

from genai_sdk.testing import Emulator

folder = Path(sys.argv[1] if len(sys.argv) > 1 else "out")
folder.mkdir(parents=True, exist_ok=True)
example = Path(__file__).with_name("avocado_couch.py").resolve()

with Emulator() as emulator, emulator.installed():
    os.chdir(folder)
    runpy.run_path(str(example), run_name="__main__")
    print(f"saved: {', '.join(sorted(p.name for p in Path('.').glob('avocado_couch*.jpg')))} in {folder}/")
