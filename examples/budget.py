"""Credits and budgets: grant an account credits, cap its daily spending, and watch a call be refused before it is
sent. Runs offline against the emulator: `python examples/budget.py`."""

import genai_sdk as genai
from genai_sdk.testing import Emulator

with Emulator() as emulator, emulator.installed():
    client = genai.Client(image="openai:dall-e-2", ledger="memory://", account="alice")
    client.credits.grant(10, reason="welcome")
    client.credits.set_budget(credits=5, period="day")

    print("estimate:", client.images.estimate("an avocado couch", n=2, size="512x512"))
    result = client.images.generate("an avocado couch", n=2, size="512x512")
    print("charged:", result.cost, "balance:", client.credits.balance())
    try:
        client.images.generate("an avocado couch", n=2, size="512x512")
    except genai.BudgetExceededError as refused:
        print("refused before sending:", refused)
    for entry in client.credits.history():
        print(f"  {entry.kind:<7} {entry.credits:>9} {entry.reason or entry.model}")
