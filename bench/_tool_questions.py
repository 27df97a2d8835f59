"""The question set of ``tool_choice.py``: tool sets, questions a tool answers, questions
none does, and finished calls whose result has come back (the next turn should be text)."""

from __future__ import annotations

from typing import Any


def function(name: str, description: str, properties: dict[str, Any], required: list[str]) -> dict[str, Any]:
    return {
        "name": name,
        "description": description,
        "parameters": {"type": "object", "properties": properties, "required": required},
    }


S = {"type": "string"}
# Google's Vertex function-calling samples, verbatim.
WEATHER = function(
    "get_current_weather",
    "Get the current weather in a given location",
    {
        "location": {
            "type": "string",
            "description": "The city and state, e.g. San Francisco, CA or a zip code e.g. 95616",
        },
        "unit": {"type": "string", "enum": ["celsius", "fahrenheit"]},
    },
    ["location"],
)
STOCK = function(
    "get_stock_price",
    "Get the current stock price of a company, by its ticker symbol",
    {"ticker": {"type": "string", "description": "The ticker symbol, e.g. GOOG"}},
    ["ticker"],
)
EMAIL = function(
    "send_email",
    "Send an email to someone",
    {"to": {"type": "string", "description": "The recipient's email address"}, "subject": S, "body": S},
    ["to", "subject", "body"],
)
FLIGHTS = function(
    "search_flights",
    "Search for flights between two cities on a date",
    {"origin": S, "destination": S, "date": {"type": "string", "description": "YYYY-MM-DD"}},
    ["origin", "destination"],
)
CURRENCY = function(
    "convert_currency",
    "Convert an amount of money from one currency to another",
    {"amount": {"type": "number"}, "from_currency": S, "to_currency": S},
    ["amount", "from_currency", "to_currency"],
)
TRANSLATE = function(
    "translate_text",
    "Translate a text into another language",
    {"text": S, "target_language": S},
    ["text", "target_language"],
)

TOOLSETS: dict[str, list[dict[str, Any]]] = {
    "weather": [WEATHER],
    "stock": [STOCK],
    "email": [EMAIL],
    "travel": [FLIGHTS, WEATHER],
    "money": [CURRENCY, STOCK],
    "assistant": [WEATHER, STOCK, EMAIL, TRANSLATE],
}

# (tool set, question, the function that answers it)
FITS: list[tuple[str, str, str]] = [
    ("weather", "What is the weather in Boston, MA?", "get_current_weather"),
    ("weather", "What's the weather like in Paris right now?", "get_current_weather"),
    ("weather", "Is it raining in Seattle?", "get_current_weather"),
    ("weather", "How hot is it in Phoenix today, in fahrenheit?", "get_current_weather"),
    ("weather", "Tell me the current temperature in Tokyo.", "get_current_weather"),
    ("stock", "What is the stock price of Apple (AAPL)?", "get_stock_price"),
    ("stock", "How much is one share of Tesla right now?", "get_stock_price"),
    ("stock", "Get me the current price of MSFT.", "get_stock_price"),
    ("email", "Send an email to bob@example.com saying the meeting moved to 3pm.", "send_email"),
    ("email", "Email alice@example.com with the subject Lunch and ask if she is free on Friday.", "send_email"),
    ("email", "Write to carol@example.com that the report is ready.", "send_email"),
    ("travel", "Find flights from London to New York on 2025-05-01.", "search_flights"),
    ("travel", "Search for a flight from Paris to Rome next Monday.", "search_flights"),
    ("travel", "What is the weather in Madrid today?", "get_current_weather"),
    ("money", "Convert 100 US dollars to euros.", "convert_currency"),
    ("money", "How many Japanese yen is 50 dollars?", "convert_currency"),
    ("money", "What is Google's stock price?", "get_stock_price"),
    ("assistant", "What is the weather in Berlin?", "get_current_weather"),
    ("assistant", "Translate 'good morning' into Spanish.", "translate_text"),
    ("assistant", "What's Amazon's stock trading at?", "get_stock_price"),
    ("assistant", "Send an email to dan@example.com to say thanks for the gift.", "send_email"),
    ("assistant", "How do you say 'thank you' in French?", "translate_text"),
]

# (tool set, question): no tool answers these.
NO_TOOL: list[tuple[str, str]] = [
    ("weather", "Write a haiku about autumn."),
    ("weather", "What is 2+2?"),
    ("weather", "Tell me a joke."),
    ("weather", "Who wrote Romeo and Juliet?"),
    ("weather", "What is the capital of France?"),
    ("stock", "Explain what photosynthesis is."),
    ("stock", "Say hello."),
    ("stock", "Give me three tips for better sleep."),
    ("email", "What does HTML stand for?"),
    ("email", "How do I boil an egg?"),
    ("email", "Write a short poem about the sea."),
    ("travel", "What is your name?"),
    ("travel", "Thank you!"),
    ("travel", "List three colors."),
    ("money", "What is 12 times 12?"),
    ("money", "Summarize the story of Cinderella in one sentence."),
    ("money", "Who painted the Mona Lisa?"),
    ("assistant", "Hi, how are you?"),
    ("assistant", "What is the largest planet in the solar system?"),
    ("assistant", "Write a limerick about a cat."),
    ("assistant", "Why is the sky blue?"),
    ("assistant", "Name a famous scientist."),
]

# (tool set, question, the call made, its result): the next turn answers in text.
RESULTS: list[tuple[str, str, str, dict[str, Any], dict[str, Any]]] = [
    (
        "weather",
        "What is the weather in Boston, MA?",
        "get_current_weather",
        {"location": "Boston, MA"},
        {"temperature": 22, "unit": "celsius", "description": "Sunny"},
    ),
    ("stock", "What is the stock price of Apple (AAPL)?", "get_stock_price", {"ticker": "AAPL"}, {"price": 189.5}),
    (
        "email",
        "Send an email to bob@example.com saying the meeting moved to 3pm.",
        "send_email",
        {"to": "bob@example.com", "subject": "Meeting", "body": "The meeting moved to 3pm."},
        {"status": "sent"},
    ),
    (
        "travel",
        "Find flights from London to New York on 2025-05-01.",
        "search_flights",
        {"origin": "London", "destination": "New York", "date": "2025-05-01"},
        {"flights": [{"number": "BA117", "departs": "08:25"}]},
    ),
    (
        "money",
        "Convert 100 US dollars to euros.",
        "convert_currency",
        {"amount": 100, "from_currency": "USD", "to_currency": "EUR"},
        {"amount": 92.3, "currency": "EUR"},
    ),
    (
        "assistant",
        "Translate 'good morning' into Spanish.",
        "translate_text",
        {"text": "good morning", "target_language": "Spanish"},
        {"translation": "buenos días"},
    ),
]
