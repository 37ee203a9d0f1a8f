"""Deterministic generator of synthetic instruction-style prompts.

The output imitates the kind of data people curate for LLM fine-tuning:
short imperative or question prompts ("Write a ...", "How do I ...") across a
set of clearly distinct topics, with an optional context field, a source label
and a loose quality score.  With ``mess=True`` it also contains the usual
real-world dirt: exact duplicates, near-duplicates, empty and whitespace-only
rows, rows with a null instruction, and a handful of very long pasted contexts.

Everything is driven by a private ``random.Random(seed)``; the same
``(n, seed, long_words, mess)`` always gives the same table, byte for byte once
written.

Library use::

    from sample_data.generate import generate_rows
    table = generate_rows(3000, seed=7)          # pyarrow.Table

Command line::

    python sample_data/generate.py [--rows N] [--seed S] [--out PATH]
"""

from __future__ import annotations

import argparse
import json
import math
import os
import random
import string
import sys
import tempfile
import time
from pathlib import Path

import pyarrow as pa

__all__ = ["generate_rows", "write_table", "TOPICS", "SOURCES", "COLUMNS"]

COLUMNS = ["id", "instruction", "input", "text", "topic", "source", "quality", "lang"]

SOURCES = ["forum", "synthetic", "support_tickets", "crowd", "docs"]

# Shared slot fillers (numbers, months, ...) that any template may use.
_COMMON: dict[str, list[str]] = {
    "n": [str(i) for i in range(2, 61)],
    "n1": [str(i) for i in range(2, 61)],
    "n2": [str(i) for i in range(2, 41)],
    "n3": [str(i) for i in range(50, 901, 5)],
    "n4": [str(i) for i in range(100, 1000, 7)],
    "month": ["January", "February", "March", "April", "May", "June", "July",
              "August", "September", "October", "November", "December"],
    "len": ["a page", "two pages", "a short exchange", "500 words", "three paragraphs"],
}

# ---------------------------------------------------------------------------
# Topic vocabularies.  Each topic has instruction templates ("t"), context
# templates for the optional `input` column ("ctx"), a preferred source and
# its own slot fillers.  A slot "{abc2}" draws from list "abc".
# ---------------------------------------------------------------------------
TOPICS: dict[str, dict] = {
    "python_programming": {
        "src": "forum",
        "t": [
            "Write a Python function to {v} {o}.",
            "How do I {v} {o} in Python using {l}?",
            "Explain why my Python script raises {e} when I try to {v} {o}.",
            "Give me an example of {c} in Python applied to {o}.",
            "What is the most idiomatic way to {v} {o} with {l}?",
            "Refactor my Python code to use {c} instead of {c2}.",
            "Show me how to write a pytest unit test for a function that needs to {v} {o}.",
            "Why is my Python loop so slow when I {v} {o}, and how can {l} speed it up?",
            "Can you explain the difference between {c} and {c2} in Python?",
            "Fix the {e} in my Python class that tries to {v} {o}.",
        ],
        "ctx": [
            "def process(items):\n    result = []\n    for i in range(len(items)):\n        result.append(items[i] * 2)\n    return result",
            "Traceback (most recent call last):\n  File \"main.py\", line {n}, in <module>\n    run()\n{ename}",
            "I am using Python 3.{py} on {os} together with {l}.",
            "import json\n\nwith open(\"data.json\") as f:\n    data = json.load(f)\nprint(data[\"items\"][0])",
            "My script needs to {v} {o} but every run takes {n} seconds.",
            "class Node:\n    def __init__(self, value):\n        self.value = value\n        self.children = []",
            "The function should {v} {o} and return a list; I tried {c} but the output is empty.",
        ],
        "v": ["parse", "read", "sort", "deduplicate", "flatten", "serialize", "validate",
              "merge", "filter", "cache", "download", "iterate over", "tokenize", "group",
              "reverse", "compress", "type-annotate", "lazily load"],
        "o": ["a nested dictionary", "a list of tuples", "a JSON file", "a CSV file with pandas",
              "command line arguments with argparse", "a large text file line by line",
              "a generator of integers", "a dataclass instance", "a list of dictionaries by key",
              "environment variables", "a pathlib directory tree", "an async HTTP response",
              "a YAML config file", "a set of file paths", "a NumPy array", "a pandas DataFrame column"],
        "l": ["the standard library", "itertools", "collections.Counter", "functools.lru_cache",
              "asyncio", "pandas", "a list comprehension", "the re module", "the json module",
              "type hints and mypy", "a context manager", "the logging module", "multiprocessing"],
        "c": ["decorators", "generators", "list comprehensions", "context managers", "dataclasses",
              "f-strings", "lambda functions", "virtual environments", "the GIL",
              "*args and **kwargs", "metaclasses", "async/await", "duck typing", "slicing"],
        "e": ["a KeyError", "a TypeError", "an IndentationError", "a RecursionError",
              "an AttributeError on NoneType", "a ModuleNotFoundError", "a UnicodeDecodeError",
              "an IndexError", "a ValueError", "a StopIteration"],
        "ename": ["KeyError: 'user_id'", "TypeError: unsupported operand type(s) for +: 'int' and 'str'",
                  "IndexError: list index out of range", "AttributeError: 'NoneType' object has no attribute 'get'",
                  "ModuleNotFoundError: No module named 'requests'", "RecursionError: maximum recursion depth exceeded"],
        "py": ["8", "9", "10", "11", "12", "13"],
        "os": ["Windows 11", "Ubuntu 22.04", "macOS", "a Raspberry Pi", "WSL2"],
    },
    "sql_databases": {
        "src": "docs",
        "t": [
            "Write a SQL query to {sv} {so} from the {tb} table.",
            "How do I {sv} {so} in {db}?",
            "Explain the difference between {sc} and {sc2} in SQL.",
            "Why is my {db} query slow when I join the {tb} and {tb2} tables?",
            "Give me a SQL query to {sv} {so} using {sc}.",
            "Which index should I add on the {tb} table to speed up {sc}?",
            "Rewrite this SQL query to use {sc} instead of a nested subquery.",
            "How should I design a relational database schema for {domain} in {db}?",
            "Write a database migration that adds a {col} column to the {tb} table in {db}.",
            "What does the {db} query planner do with {sc} on the {tb} table?",
        ],
        "ctx": [
            "SELECT c.name, SUM(o.total)\nFROM customers c\nJOIN orders o ON o.customer_id = c.id\nGROUP BY c.name;",
            "The {tb} table has about {n} million rows and a primary key on id.",
            "CREATE TABLE {tb} (\n  id INTEGER PRIMARY KEY,\n  name TEXT NOT NULL,\n  created_at TIMESTAMP\n);",
            "We are running {db} and the EXPLAIN plan shows a sequential scan on {tb}.",
            "ERROR: column \"{tb}.id\" must appear in the GROUP BY clause or be used in an aggregate function",
            "The {tb} and {tb2} tables are linked by a foreign key, and the join returns duplicate rows.",
        ],
        "sv": ["find", "return", "list", "calculate", "retrieve", "rank", "count", "select"],
        "so": ["the top 10 customers by revenue", "duplicate email addresses", "monthly order totals",
               "rows with NULL values", "the second highest salary", "orders placed in the last 30 days",
               "the running total of sales", "employees and their managers", "products that were never ordered",
               "the median order value per region", "the latest record per user", "gaps in invoice numbers"],
        "tb": ["orders", "customers", "employees", "invoices", "products", "sessions",
               "transactions", "inventory", "users", "payments", "shipments"],
        "db": ["PostgreSQL", "MySQL", "SQLite", "SQL Server", "Snowflake", "BigQuery", "Oracle", "DuckDB"],
        "sc": ["a LEFT JOIN", "an INNER JOIN", "a window function", "GROUP BY with HAVING",
               "a common table expression", "a correlated subquery", "UNION ALL", "a composite index",
               "a foreign key constraint", "ROW_NUMBER() OVER (PARTITION BY ...)", "a materialized view",
               "COALESCE", "a self join", "a CROSS JOIN"],
        "domain": ["a library lending system", "an online store", "a school timetable", "a hotel booking site",
                   "a helpdesk ticketing tool", "a fleet tracking app", "a clinic appointment system"],
        "col": ["created_at timestamp", "status enum", "nullable email", "deleted_at", "region_id foreign key",
                "unique username"],
    },
    "cooking_recipes": {
        "src": "crowd",
        "t": [
            "Give me a recipe for {dish} using {ing}.",
            "How do I {cv} {ing} without {prob}?",
            "What can I cook for dinner with {ing}, {ing2} and {ing3}?",
            "Write a {diet} version of {dish} that serves {n2}.",
            "How long should I {cv} {ing} in {tool}?",
            "What can I substitute for {ing} in {dish}?",
            "Suggest a {diet} weekly meal prep plan built around {ing} and {ing2}.",
            "Why does my {dish} always turn out {prob2}?",
            "How do I make {dish} in {tool} for {n2} people?",
            "Explain the best way to {cv} {ing} for {dish}.",
        ],
        "ctx": [
            "I only have {ing}, {ing2}, onions, olive oil and some dried spices in the pantry.",
            "My oven runs hot and the {dish} recipe says to bake it for {n} minutes at 180°C.",
            "Ingredients:\n- 2 cups flour\n- 1 tsp baking soda\n- 3 ripe bananas\n- 1/2 cup melted butter",
            "Cooking for {n2} dinner guests, one of whom eats {diet}.",
            "I tried to {cv} the {ing} but it came out {prob2}.",
            "The recipe calls for {ing} but my store only sells {ing2}.",
        ],
        "dish": ["chicken tikka masala", "banana bread", "a mushroom risotto", "beef stew", "vegetable lasagna",
                 "shakshuka", "sourdough bread", "pad thai", "a lemon drizzle cake", "chili con carne",
                 "homemade pizza dough", "French onion soup", "a Greek salad", "fluffy pancakes",
                 "salmon teriyaki", "red lentil curry", "carrot cake", "fried rice"],
        "ing": ["chickpeas", "leftover rice", "chicken thighs", "ground beef", "spinach", "sweet potatoes",
                "firm tofu", "eggs", "mushrooms", "canned tomatoes", "salmon fillets", "butternut squash",
                "garlic and ginger", "fresh basil", "cauliflower", "buttermilk", "puff pastry", "pork shoulder"],
        "cv": ["roast", "braise", "caramelize", "sear", "poach", "marinate", "bake", "simmer", "grill",
               "blanch", "sauté", "slow-cook"],
        "prob": ["burning the garlic", "drying it out", "a soggy texture", "the sauce splitting",
                 "overcooking it", "the eggs curdling", "it sticking to the pan"],
        "prob2": ["dense and gummy", "too salty", "bland", "dry", "watery", "burnt on the bottom",
                  "raw in the middle"],
        "diet": ["vegan", "gluten-free", "low-carb", "dairy-free", "high-protein", "budget-friendly",
                 "vegetarian", "keto"],
        "tool": ["a slow cooker", "an air fryer", "a cast iron skillet", "a Dutch oven", "an Instant Pot",
                 "a sheet pan", "a wok", "the oven at 200°C"],
    },
    "personal_finance": {
        "src": "forum",
        "t": [
            "How should I {fv} {fo} if I earn {money} a year?",
            "Explain the difference between {fi} and {fi2} for retirement savings.",
            "Is it better to pay off {debt} or invest in {fi}?",
            "Create a monthly budget for {who} with {money} in annual take-home pay.",
            "What are the tax implications of {fevent}?",
            "Give me a plan to build an emergency fund while paying off {debt}.",
            "How much should I contribute to {fi} to get the full employer match?",
            "What percentage of my salary should go toward {fo}?",
            "Help me compare {fi} with {fi2} for {goal}.",
            "What is a sensible investment strategy for {who} saving for {goal}?",
        ],
        "ctx": [
            "My current debts: credit card $4,200 at 22% APR and a car loan of $9,800 at 6% interest.",
            "I have {money} sitting in a checking account earning almost no interest.",
            "Monthly expenses: rent $1,400, groceries $450, utilities $180, insurance $220.",
            "My employer matches 50% of 401(k) contributions up to 6% of salary.",
            "I am {who} and my credit score is around {cs}.",
            "Net worth: {money} in index funds, no mortgage, some student loan debt left.",
        ],
        "fv": ["allocate", "invest", "save", "budget", "split", "rebalance", "protect"],
        "fo": ["my savings", "retirement savings", "a down payment on a house", "an emergency fund",
               "my monthly paycheck", "a child's college fund", "my annual bonus", "rent and groceries",
               "my brokerage account"],
        "fi": ["a Roth IRA", "a traditional 401(k)", "index funds", "a high-yield savings account",
               "certificates of deposit", "government bonds", "dividend stocks", "a health savings account",
               "a target-date fund", "low-cost ETFs", "a money market fund"],
        "debt": ["my credit card balance", "student loans", "a car loan", "my mortgage early",
                 "a personal loan at 11% APR", "medical debt", "a payday loan"],
        "money": ["$42,000", "$65,000", "$90,000", "$120,000", "$30,000", "€55,000", "£38,000", "$75,000"],
        "who": ["a single parent", "a recent college graduate", "a freelancer with irregular income",
                "a couple saving for a wedding", "a retiree on a fixed income", "a family of four",
                "a nurse working night shifts"],
        "fevent": ["selling stocks after one year", "withdrawing from a 401(k) early", "receiving a large inheritance",
                   "converting a traditional IRA to a Roth", "selling my house", "getting paid in cryptocurrency",
                   "exercising employee stock options"],
        "goal": ["retirement in 25 years", "buying a home in five years", "early retirement",
                 "saving for a car", "a sabbatical year", "paying for college"],
        "cs": ["580", "640", "690", "720", "760", "810"],
    },
    "travel_planning": {
        "src": "crowd",
        "t": [
            "Plan a {days}-day travel itinerary for {city} on a {budget} budget.",
            "What are the best things to do in {city} for {tw}?",
            "How do I get from {city} airport to the city center by {trans}?",
            "Give me a packing list for {trip} in {season}.",
            "Is it worth buying {pass} for a week of sightseeing in {city}?",
            "Which neighborhoods in {city} are best to stay in for {tw}?",
            "Suggest a road trip route from {city} to {city2} with scenic stops.",
            "Do I need a tourist visa to visit {country} with {passport}?",
            "What should I know about {tip} when traveling to {country}?",
            "Recommend a {days}-day vacation in {country} for {tw}.",
        ],
        "ctx": [
            "We land in {city} at 6am and fly out {days} days later.",
            "Our hotel is near the old town and we would rather not rent a car.",
            "Budget: about ${n3} per day per person, including hostels, trains and food.",
            "Traveling as {tw}, interested in museums, street markets and day hikes.",
            "Flights: outbound to {city}, return from {city2} with a layover in {city3}.",
            "We have already booked a guesthouse in {city} for the first {n2} nights.",
        ],
        "city": ["Lisbon", "Kyoto", "Barcelona", "Reykjavik", "Mexico City", "Prague", "Cape Town",
                 "Vancouver", "Marrakech", "Bangkok", "Edinburgh", "Buenos Aires", "Istanbul", "Hanoi",
                 "Vienna", "Seoul", "Dubrovnik"],
        "days": [str(i) for i in range(2, 15)],
        "budget": ["shoestring", "moderate", "luxury", "backpacker", "mid-range"],
        "tw": ["a family with toddlers", "solo travelers", "a honeymoon couple", "food lovers", "hikers",
               "first-time visitors", "travelers using a wheelchair", "a group of students", "retirees"],
        "trans": ["train", "public bus", "taxi", "ride-share", "metro", "airport shuttle"],
        "trip": ["a backpacking trip through Southeast Asia", "a ski holiday in the Alps", "a beach vacation",
                 "a business trip", "a camping trip in national parks", "a Caribbean cruise",
                 "a hiking trek in Patagonia"],
        "season": ["winter", "monsoon season", "early spring", "peak summer", "late autumn"],
        "pass": ["a city tourist pass", "a rail pass", "a museum pass", "a weekly transit card"],
        "country": ["Japan", "Morocco", "Peru", "Iceland", "Vietnam", "Turkey", "New Zealand", "Brazil",
                    "India", "Portugal", "Norway"],
        "passport": ["a US passport", "an EU passport", "a Canadian passport", "an Indian passport",
                     "a UK passport"],
        "tip": ["tipping etiquette", "travel insurance", "local SIM cards", "currency exchange", "jet lag",
                "hotel booking scams", "driving on the left", "tourist tax"],
    },
    "fitness_exercise": {
        "src": "synthetic",
        "t": [
            "Design a {n2}-week {prog} for {fw}.",
            "How many sets and reps of {ex} should I do to build {goalf}?",
            "What is the correct form for {ex} to avoid {inj}?",
            "Give me a {mins}-minute {wtype} workout I can do {where}.",
            "Explain the difference between {wtype} and {wtype2} for {goalf}.",
            "How do I progress from {ex} to {ex2} in my training?",
            "Create a warm-up routine before {ex} for {fw}.",
            "Why are my {muscle} so sore after {ex}, and is it normal?",
            "What should I eat before and after {wtype} to improve {goalf}?",
            "Build me a weekly gym workout split that includes {ex} and {ex2}.",
        ],
        "ctx": [
            "Current lifts: squat {sq} lb, bench {bp} lb, deadlift {dl} lb.",
            "I train {d} days a week and sleep about {h} hours a night.",
            "My resting heart rate is {hr} bpm and I run a 5K in about {n} minutes.",
            "Equipment available: adjustable dumbbells, a pull-up bar and a yoga mat.",
            "I am {fw} and my main goal this year is {goalf}.",
        ],
        "prog": ["strength training program", "couch to 5K running plan", "push-pull-legs split",
                 "full-body workout routine", "marathon training block", "mobility program",
                 "hypertrophy program", "kettlebell program"],
        "fw": ["a beginner", "a 50-year-old with bad knees", "a busy parent", "an intermediate lifter",
               "a runner returning from injury", "someone with only dumbbells", "a college athlete"],
        "ex": ["barbell squats", "deadlifts", "push-ups", "pull-ups", "the bench press", "walking lunges",
               "kettlebell swings", "planks", "Romanian deadlifts", "the overhead press", "burpees",
               "hill sprints", "box jumps"],
        "goalf": ["muscle mass", "endurance", "core strength", "explosive power", "fat loss",
                  "grip strength", "flexibility", "cardio fitness"],
        "inj": ["lower back pain", "knee strain", "shoulder impingement", "wrist pain", "shin splints",
                "a pulled hamstring"],
        "mins": ["10", "15", "20", "30", "45", "60"],
        "wtype": ["HIIT", "steady-state cardio", "circuit training", "yoga", "Pilates", "tempo runs",
                  "resistance band training", "interval cycling", "weightlifting"],
        "where": ["at home with no equipment", "in a hotel room", "at the gym", "in the park",
                  "in a small apartment"],
        "muscle": ["quads", "hamstrings", "lower back muscles", "forearms", "shoulders", "calves", "glutes"],
        "sq": [str(i) for i in range(95, 405, 10)],
        "bp": [str(i) for i in range(65, 315, 10)],
        "dl": [str(i) for i in range(135, 505, 10)],
        "d": ["2", "3", "4", "5", "6"],
        "h": ["5", "6", "7", "8"],
        "hr": ["52", "58", "64", "71", "78"],
    },
    "gardening": {
        "src": "forum",
        "t": [
            "When should I plant {plant} in {zone}?",
            "How do I {gv} {plant} so it {gres}?",
            "Why are the leaves on my {plant} {symp}?",
            "What is the best {soil} for growing {plant} in {gplace}?",
            "Give me a companion planting plan for {plant} and {plant2} in the garden.",
            "How do I get rid of {pest} on my {plant} organically?",
            "Explain how to start {plant} from seed indoors before the last frost.",
            "Design a {gstyle} for {gplace}.",
            "How often should I water {plant} during {gseason}?",
            "Which plants grow well next to {plant} in {gplace}?",
        ],
        "ctx": [
            "The garden bed gets about {h} hours of direct sun and the soil is heavy clay.",
            "I planted the {plant} in late {month} and they have not flowered yet.",
            "Soil test results: pH 7.8, low nitrogen, high phosphorus.",
            "There are tiny {pest} on the underside of the leaves and sticky residue on the stems.",
            "I garden in {zone} and mulch the beds with shredded bark every spring.",
        ],
        "plant": ["tomatoes", "hydrangeas", "basil", "a fiddle leaf fig", "strawberries", "lavender",
                  "zucchini", "roses", "garlic bulbs", "a potted lemon tree", "bell peppers", "succulents",
                  "blueberry bushes", "hostas", "cucumbers", "tulip bulbs", "a Japanese maple"],
        "zone": ["USDA zone 5", "zone 8b", "a cold northern climate", "a hot dry climate",
                 "the Pacific Northwest", "a Mediterranean climate"],
        "gv": ["prune", "fertilize", "repot", "mulch", "transplant", "propagate", "deadhead", "stake"],
        "gres": ["produces more fruit", "flowers again next year", "survives the winter frost",
                 "stops wilting", "grows bushier"],
        "symp": ["turning yellow", "curling at the edges", "covered in white powder",
                 "developing brown spots", "dropping off", "wilting in the afternoon"],
        "soil": ["potting mix", "soil pH", "compost blend", "raised bed soil", "fertilizer ratio"],
        "gplace": ["a shady balcony", "raised beds", "clay soil", "a small urban backyard",
                   "containers on a patio", "a greenhouse", "a north-facing windowsill"],
        "pest": ["aphids", "slugs", "spider mites", "tomato hornworms", "powdery mildew", "fungus gnats",
                 "Japanese beetles", "whiteflies"],
        "gstyle": ["pollinator garden", "vegetable garden layout", "rock garden", "herb spiral",
                   "drought-tolerant flower bed", "cottage garden"],
        "gseason": ["a summer heatwave", "the first month after planting", "winter dormancy",
                    "the fruiting stage", "a rainy spring"],
        "h": ["3", "4", "5", "6", "8"],
    },
    "fiction_writing": {
        "src": "synthetic",
        "t": [
            "Write a short story about {char} who {plot}.",
            "Give me a {genre} story opening set in {setting}.",
            "Write a scene where {char} confronts {char2} in {setting}.",
            "Help me develop the backstory of {char} for my {genre} novel.",
            "Write a poem about {theme} in the form of {form}.",
            "Suggest five plot twists for a {genre} novel about {char}.",
            "Describe {setting} from the point of view of {char}.",
            "Write {len} of dialogue between {char} and {char2} that reveals {theme}.",
            "How can I make the villain in my {genre} novel more {trait}?",
            "Continue this {genre} story where {char} {plot}.",
        ],
        "ctx": [
            "My protagonist is {char} and the story takes place in {setting}.",
            "Chapter one ends with the heroine escaping the burning tower. Chapter two needs a quieter tone.",
            "Tone: dark, lyrical, slow-burning. Point of view: first person, present tense.",
            "\"You were never supposed to come back,\" she whispered, closing the door behind him.",
            "The novel explores {theme} and is aimed at young adult readers.",
        ],
        "char": ["a retired lighthouse keeper", "a young witch", "a detective with amnesia", "an exiled prince",
                 "a time-traveling librarian", "a robot gardener", "a disgraced knight", "a street musician",
                 "a ghost who cannot remember her name", "a smuggler captain", "a shy dragon",
                 "an elderly chess champion", "a runaway orphan"],
        "plot": ["discovers a door that should not exist", "must betray a best friend to save the city",
                 "wakes up in a world without color", "inherits a haunted bookshop",
                 "receives letters from the future", "is hunted by a forgotten god", "steals the moon"],
        "genre": ["fantasy", "science fiction", "noir mystery", "gothic horror", "romance", "dystopian",
                  "magical realism", "cozy mystery", "space opera"],
        "setting": ["a floating city", "a rain-soaked 1940s Los Angeles", "an abandoned space station",
                    "a cursed forest", "a Victorian boarding house", "a desert caravan",
                    "an underwater kingdom", "a small fishing village"],
        "theme": ["grief", "forbidden love", "revenge", "the cost of ambition", "loneliness", "redemption",
                  "found family", "lost memories"],
        "form": ["a sonnet", "a haiku sequence", "free verse", "a villanelle", "a limerick", "an epic ballad"],
        "trait": ["menacing", "sympathetic", "complex", "believable", "terrifying"],
    },
    "business_email": {
        "src": "support_tickets",
        "t": [
            "Write a {tone} email to {recip} about {esubj}.",
            "Draft a follow-up email to {recip} after {eevent}.",
            "How do I politely decline {req} in an email to {recip}?",
            "Rewrite my email to {recip} so it sounds more {tone2}.",
            "Write a subject line and opening paragraph for an email announcing {esubj}.",
            "Compose a reply email to {recip} who is upset about {complaint}.",
            "Give me a template for a {etype} email to {recip}.",
            "Write an out-of-office email reply for {absence}.",
            "Help me write a cover letter email for {job}.",
            "Draft a {tone} message to {recip} explaining {esubj}.",
        ],
        "ctx": [
            "Subject: Re: Invoice #{n4}\n\nHi Sarah,\nWe still haven't received payment for last month. Can you check?",
            "Hi team,\nJust a reminder that the report is due Friday. Let me know if there are blockers.\nThanks, Mark",
            "The client, Acme Logistics, has been with us for {n2} years and is asking for a 15% discount.",
            "I need to send this to {recip} before the meeting tomorrow at 10am.",
            "Dear {recip},\nThank you for your message regarding {esubj}. We appreciate your patience.",
        ],
        "tone": ["professional", "friendly", "formal", "apologetic", "persuasive", "concise", "warm but firm"],
        "tone2": ["polite", "confident", "diplomatic", "less passive-aggressive", "formal", "enthusiastic"],
        "recip": ["my manager", "a client", "the hiring team", "our vendor", "a colleague in another department",
                  "the board of directors", "a new customer", "the HR department", "a supplier"],
        "esubj": ["a missed project deadline", "a price increase", "the quarterly sales report",
                  "a change in the meeting schedule", "a new office policy", "the launch of our product",
                  "a budget approval request", "onboarding a new team member", "a delayed shipment"],
        "eevent": ["a job interview", "a sales call", "a networking event", "a client meeting", "a conference",
                   "a failed payment"],
        "req": ["a meeting invitation", "a request for a discount", "a partnership proposal",
                "extra work on the weekend", "a speaking invitation"],
        "complaint": ["a late delivery", "an incorrect invoice", "poor customer service", "a cancelled order",
                      "a billing error"],
        "etype": ["cold outreach", "payment reminder", "thank-you", "resignation", "introduction",
                  "meeting request", "project status update"],
        "absence": ["two weeks of vacation", "parental leave", "a business trip", "the holiday office closure"],
        "job": ["a marketing manager position", "a junior accountant role", "a project coordinator job",
                "a sales associate position"],
    },
    "math_word_problems": {
        "src": "synthetic",
        "t": [
            "A train travels {n3} km in {n2} hours. What is its average speed in km per hour?",
            "If {name} buys {n1} {items} at ${n2} each and pays with a ${n3} bill, how much change do they get?",
            "A rectangle has a perimeter of {n3} cm and a length of {n1} cm. Find its area.",
            "Solve for x: {n1}x + {n2} = {n3}. Show each step.",
            "{name} saves ${n1} every week. How many weeks until they have ${n3}?",
            "A recipe needs {n2} cups of flour for {n1} servings. How much flour is needed for {n3} servings?",
            "What is {n1}% of {n3}? Explain the calculation for a {grade} student.",
            "Two pipes fill a tank in {n1} and {n2} hours. How long do they take working together?",
            "A jacket costs ${n3} and is discounted by {n1}%. What is the sale price?",
            "A bag has {n1} red and {n2} blue marbles. What is the probability of drawing two red marbles without replacement?",
            "The sum of three consecutive integers is {n3}. Find the integers.",
            "A car loses {n1}% of its value per year. What is it worth after {n2} years if it cost ${n3}?",
        ],
        "ctx": [
            "My answer was {n4} but the textbook says {n}. Where did I go wrong?",
            "This is from a {grade} worksheet on fractions, ratios and percentages.",
            "I tried setting up the equation {n1}x = {n3} but got stuck.",
            "Please show the arithmetic and check the units in the final answer.",
        ],
        "name": ["Maria", "Tom", "Aisha", "Kenji", "Lucas", "Priya", "Omar", "Elena", "Sam", "Chloe"],
        "items": ["notebooks", "apples", "movie tickets", "pencils", "cupcakes", "bus passes"],
        "grade": ["fifth-grade", "middle school", "high school", "adult learner"],
    },
    "history": {
        "src": "docs",
        "t": [
            "What were the main causes of {hev}?",
            "Explain the historical significance of {hev} for {hregion}.",
            "Who was {hfig} and why are they historically important?",
            "Compare {hfig} and {hfig2} as political leaders.",
            "Summarize the events of {hev} in {len2}.",
            "How did {hthing} change daily life in {hera}?",
            "Write an essay outline on the consequences of {hev}.",
            "What role did {hfig} play in {hev}?",
            "Give me a timeline of {hev} from start to finish.",
            "Which primary sources best describe {hev}?",
        ],
        "ctx": [
            "Our history class is studying {hera} and the exam focuses on primary sources.",
            "My textbook and my lecture notes give different start dates for {hev}.",
            "I need this for a {grade2} essay about {hfig}.",
            "Focus on the social and economic effects rather than the military campaigns.",
        ],
        "hev": ["the French Revolution", "the fall of the Western Roman Empire", "the Meiji Restoration",
                "the Cuban Missile Crisis", "the Black Death", "the partition of India", "the Thirty Years' War",
                "the Industrial Revolution", "the American Civil War", "the collapse of the Soviet Union",
                "the Ottoman siege of Vienna", "the Protestant Reformation", "the Opium Wars"],
        "hfig": ["Napoleon Bonaparte", "Queen Elizabeth I", "Genghis Khan", "Simón Bolívar", "Cleopatra",
                 "Otto von Bismarck", "Mansa Musa", "Catherine the Great", "Abraham Lincoln", "Emperor Ashoka",
                 "Winston Churchill", "Toussaint Louverture"],
        "hregion": ["medieval Europe", "the Atlantic world", "East Asia", "the Mediterranean",
                    "nineteenth-century Latin America", "West Africa"],
        "hthing": ["the printing press", "the steam engine", "the railroad", "the telegraph", "feudalism",
                   "the Columbian Exchange", "the plague"],
        "hera": ["Renaissance Italy", "Victorian England", "Tang dynasty China", "ancient Rome",
                 "colonial America", "the Edo period"],
        "len2": ["three paragraphs", "five bullet points", "200 words", "one paragraph"],
        "grade2": ["high school", "first-year university", "AP World History", "tenth-grade"],
    },
    "health_symptoms": {
        "src": "forum",
        "t": [
            "What could cause {sym} and {sym2} in {hwho}?",
            "Is it normal to have {sym} after {htrig}?",
            "When should I see a doctor about {sym}?",
            "What are the common side effects of {med}?",
            "How can I relieve {sym} at home?",
            "Explain the difference between {cond} and {cond2} in terms of symptoms.",
            "What are the early warning signs of {cond}?",
            "Can taking {med} cause {sym}?",
            "What lifestyle changes help manage {cond}?",
            "My doctor suspects {cond}. What tests should I expect for {sym}?",
        ],
        "ctx": [
            "Symptoms started {n2} days ago, temperature is 38.2°C, no known allergies.",
            "I am {age} years old, a non-smoker, and take {med} daily.",
            "The pain gets worse after meals and when lying down.",
            "My blood test showed low ferritin and slightly high cholesterol.",
            "I have had {sym} on and off for {n2} weeks.",
        ],
        "sym": ["a persistent dry cough", "sharp chest pain", "a throbbing headache", "dizziness when standing up",
                "numbness in my fingers", "a low-grade fever", "joint pain in the morning", "heartburn at night",
                "blurred vision", "an itchy rash", "shortness of breath", "lower abdominal cramps",
                "ringing in the ears", "constant fatigue", "a sore throat"],
        "hwho": ["a toddler", "an adult in their 30s", "an elderly parent", "a pregnant woman", "a teenager"],
        "htrig": ["getting a flu vaccine", "starting antibiotics", "a long flight", "eating dairy",
                  "a morning run", "a minor concussion"],
        "med": ["ibuprofen", "metformin", "amoxicillin", "statins", "antihistamines",
                "blood pressure medication", "sertraline", "prednisone"],
        "cond": ["type 2 diabetes", "migraine", "iron deficiency anemia", "acid reflux", "hypothyroidism",
                 "asthma", "a sinus infection", "high blood pressure", "irritable bowel syndrome", "vertigo"],
        "age": [str(i) for i in range(18, 86, 3)],
    },
    "music_theory": {
        "src": "docs",
        "t": [
            "Explain how to build {chord} on {instr}.",
            "What is the difference between {mconc} and {mconc2} in music theory?",
            "Write a chord progression in {key} using {mconc}.",
            "How do I practice {mskill} on {instr}?",
            "Why does {prog2} sound so {mood}?",
            "Give me a {mins2}-minute practice routine for {mskill} on {instr}.",
            "Analyze the harmony of a song that uses {prog2} in {key}.",
            "How do I transpose a melody from {key} to {key2}?",
            "Explain {mconc} to a {mlevel} musician.",
            "Which scales fit over {prog2} in {key} when soloing on {instr}?",
        ],
        "ctx": [
            "Chords so far: Am - F - C - G, tempo 92 bpm, 4/4 time.",
            "I have been playing {instr} for {n} months and can read treble clef slowly.",
            "The melody starts on the fifth degree of the scale and ends on the leading tone.",
            "My teacher wants me to learn {mconc} before the recital in {month}.",
        ],
        "chord": ["a major seventh chord", "a diminished triad", "a suspended fourth chord", "a dominant ninth chord",
                  "a half-diminished chord", "power chords", "an augmented triad"],
        "instr": ["guitar", "piano", "ukulele", "bass guitar", "violin", "the saxophone"],
        "mconc": ["the circle of fifths", "modes like Dorian and Mixolydian", "secondary dominants",
                  "voice leading", "syncopation", "the harmonic minor scale", "modal interchange",
                  "odd time signatures like 7/8", "counterpoint", "the pentatonic scale", "intervals",
                  "cadences", "chord inversions"],
        "key": ["C major", "A minor", "E flat major", "F sharp minor", "G major", "D Dorian", "B flat major"],
        "mskill": ["sight reading", "scales in all twelve keys", "fingerpicking", "ear training", "arpeggios",
                   "improvising over a blues", "keeping steady tempo with a metronome"],
        "prog2": ["a I-V-vi-IV chord progression", "a ii-V-I turnaround", "a twelve-bar blues",
                  "the Andalusian cadence", "a deceptive cadence"],
        "mood": ["sad", "uplifting", "tense", "nostalgic", "unresolved"],
        "mins2": ["10", "20", "30", "45"],
        "mlevel": ["beginner", "self-taught", "intermediate", "jazz"],
    },
    "car_maintenance": {
        "src": "support_tickets",
        "t": [
            "How often should I {cv2} on a {car}?",
            "Why does my {car} {carsym} when I {carwhen}?",
            "How do I replace {part} on a {car} myself?",
            "What does it mean when {light} comes on in my car?",
            "Give me a maintenance checklist for a {car} with {miles} miles.",
            "Is it safe to drive my car with {carprob}?",
            "How much does a mechanic usually charge to fix {carprob}?",
            "Explain the difference between {oil} and {oil2} for my car engine.",
            "What tools do I need to {cv2} at home in my garage?",
            "My {car} has {carprob}. Can I still drive it to the mechanic?",
        ],
        "ctx": [
            "OBD-II code P0{n4} showed up right after I filled the gas tank.",
            "The noise comes from the front passenger side and gets louder above 40 mph.",
            "Last service was {n2} months ago; the mechanic said the rear brakes were at 3 mm.",
            "It is a {car} with {miles} miles and the original transmission.",
        ],
        "cv2": ["change the oil", "rotate the tires", "replace the brake pads", "flush the coolant",
                "change the spark plugs", "replace the cabin air filter", "check the transmission fluid",
                "replace the timing belt"],
        "car": ["2012 Honda Civic", "2018 Toyota RAV4", "2009 Ford F-150", "2015 Volkswagen Golf",
                "2020 Subaru Outback", "2007 BMW 3 Series", "2016 Mazda CX-5", "2011 Chevrolet Silverado"],
        "carsym": ["make a grinding noise", "shake at highway speed", "pull to the left", "idle roughly",
                   "smell like burning oil", "squeal", "stall", "hesitate"],
        "carwhen": ["brake", "accelerate", "turn the steering wheel", "start it on cold mornings",
                    "shift into reverse", "turn on the AC"],
        "part": ["the alternator", "the serpentine belt", "a headlight bulb", "the car battery",
                 "the brake rotors", "the wiper blades", "the thermostat", "an oxygen sensor"],
        "light": ["the check engine light", "the tire pressure warning", "the battery light",
                  "the oil pressure light", "the ABS warning light"],
        "miles": ["60,000", "120,000", "200,000", "35,000", "150,000"],
        "carprob": ["a leaking radiator", "worn brake pads", "a slipping transmission", "a cracked windshield",
                    "a bad wheel bearing", "a misfiring cylinder", "bald tires"],
        "oil": ["synthetic motor oil", "conventional motor oil", "5W-30 oil", "0W-20 oil", "high-mileage oil"],
    },
    "pet_care": {
        "src": "crowd",
        "t": [
            "How do I stop my {pet} from {pbeh}?",
            "What should I feed a {page} {pet}?",
            "Is it normal for my {pet} to {pnorm}?",
            "How do I introduce a new {pet} to my {pet2}?",
            "Give me a training plan to teach my {pet} {trick}.",
            "What vaccinations does a {page} {pet} need from the vet?",
            "My {pet} has {psym}. Should I take it to the vet?",
            "How often should I {pcare} my {pet}?",
            "What are the best toys for a {ptemp} {pet}?",
            "How do I calm down my {ptemp} {pet} during fireworks?",
        ],
        "ctx": [
            "She is a {page} {pet}, about {n} pounds, and eats dry kibble twice a day.",
            "We adopted him from an animal shelter {n2} weeks ago and he is still very shy.",
            "The vet said the bloodwork was fine but recommended a diet change.",
            "Our {pet} is left alone for about {h} hours while we are at work.",
        ],
        "pet": ["puppy", "senior dog", "kitten", "rescue cat", "rabbit", "parrot", "guinea pig",
                "border collie", "golden retriever", "bearded dragon", "hamster", "ferret"],
        "pet2": ["cat", "dog", "older dog", "two cats"],
        "pbeh": ["chewing the furniture", "barking at night", "scratching the couch", "pulling on the leash",
                 "peeing on the carpet", "biting my hands", "jumping on guests", "digging in the yard"],
        "page": ["eight-week-old", "six-month-old", "ten-year-old", "newly adopted", "pregnant"],
        "pnorm": ["sleep eighteen hours a day", "eat grass", "shed so much in spring", "sneeze after playing",
                  "hide under the bed", "drink a lot of water"],
        "trick": ["to sit and stay", "to come when called", "to walk on a loose leash", "to use a litter box",
                  "to stop resource guarding", "to ring a bell to go outside"],
        "psym": ["been vomiting since yesterday", "a swollen paw", "watery eyes", "stopped eating",
                 "been scratching its ears constantly", "a limp after playing"],
        "pcare": ["bathe", "trim the nails of", "brush the teeth of", "deworm", "groom"],
        "ptemp": ["high-energy", "anxious", "bored", "destructive", "lazy"],
        "h": ["4", "6", "8", "9", "10"],
    },
    "legal_contracts": {
        "src": "docs",
        "t": [
            "Explain what {clause} means in {contract}.",
            "Draft {clause} for {contract} between {party} and {party2}.",
            "Can my {party3} {lact} without {lcond} under the contract?",
            "What happens legally if I break {contract} early?",
            "Is {clause} in {contract} enforceable in {juris}?",
            "Summarize the key legal obligations in {contract} for {party}.",
            "What should I look for before signing {contract}?",
            "How do I file {lfile} in {juris}?",
            "What are my legal rights as {party} if {ldispute}?",
            "Review {clause} in {contract} and point out risks for {party}.",
        ],
        "ctx": [
            "Section 7.2: Either party may terminate this Agreement upon thirty (30) days' written notice.",
            "The lease started on {month} 1 and runs for twelve months with a $1,800 monthly rent.",
            "\"Confidential Information\" means any non-public information disclosed by the Disclosing Party, whether oral or written.",
            "The contract is governed by the laws of {juris} and has no arbitration clause.",
        ],
        "clause": ["a non-compete clause", "an indemnification clause", "a force majeure clause",
                   "a limitation of liability clause", "an arbitration clause", "a confidentiality clause",
                   "a termination for convenience clause", "an intellectual property assignment clause",
                   "an automatic renewal clause"],
        "contract": ["an employment contract", "a residential lease agreement", "a freelance services agreement",
                     "a non-disclosure agreement", "a software license agreement", "a commercial lease",
                     "a partnership agreement", "a purchase agreement"],
        "party": ["a tenant", "a landlord", "an independent contractor", "a small business owner", "an employee",
                  "a software vendor"],
        "party3": ["landlord", "employer", "client", "business partner", "contractor"],
        "lact": ["withhold my security deposit", "terminate the agreement", "change the terms",
                 "enter the apartment", "withhold final payment", "fire me"],
        "lcond": ["written notice", "a court order", "cause", "my consent", "paying a penalty"],
        "juris": ["California", "New York", "England and Wales", "Ontario", "Texas", "Germany"],
        "lfile": ["a small claims lawsuit", "a trademark application", "an LLC registration",
                  "a tenant complaint", "a breach of contract claim"],
        "ldispute": ["the other party misses a payment", "the work is delivered late",
                     "the landlord refuses to make repairs", "the contract has no termination date",
                     "my employer withholds wages"],
    },
}

# Generic framing around the topic-specific prompt.  Kept short so that the
# topic vocabulary dominates the embedding.
_PREFIXES = [""] * 14 + ["Can you help me? ", "Hi! ", "Quick question: ", "I need some help. ",
                         "Hey, ", "Hello. "]
_SUFFIXES = [""] * 14 + [" Thanks!", " Keep it brief.", " Please be detailed.", " Step by step, please.",
                         " Use bullet points.", " Thank you in advance."]

_OTHER_LANGS = ["de", "fr", "es", "it", "pt", "und"]
_SOURCE_OFFSET = {"forum": -0.04, "synthetic": 0.05, "support_tickets": -0.06, "crowd": 0.0, "docs": 0.04}
_WHITESPACE = ["   ", "\n\t", " ", "\t\t", "\n", "  \n  "]
_FORMATTER = string.Formatter()


def _fields(template: str) -> list[str]:
    return [f for _, f, _, _ in _FORMATTER.parse(template) if f]


def _compile() -> list[tuple[str, list, list, str]]:
    """Pre-resolve, for each template, which filler list each field draws from."""
    compiled = []
    for name, spec in TOPICS.items():
        def resolve(tmpls, spec=spec):
            out = []
            for tm in tmpls:
                slots = []
                for f in _fields(tm):
                    base = f if (f in spec or f in _COMMON) else f.rstrip("0123456789")
                    lst = spec.get(base) or _COMMON.get(base)
                    if lst is None:
                        raise KeyError(f"topic {name}: no filler list for field {f!r}")
                    slots.append((f, lst))
                out.append((tm, slots))
            return out
        compiled.append((name, resolve(spec["t"]), resolve(spec["ctx"]), spec["src"]))
    return compiled


_COMPILED = _compile()


def _fill(rnd, tmpl: tuple[str, list], keep: dict | None = None) -> str:
    """Fill a template; fields present in `keep` reuse those values (and new
    values are recorded there), so a context can refer to the same city / dish
    / table as its instruction."""
    tm, slots = tmpl
    if not slots:
        return tm
    vals = {}
    for f, lst in slots:
        if keep is not None and f in keep:
            vals[f] = keep[f]
            continue
        v = lst[int(rnd() * len(lst))]
        # avoid "X and X" when a template uses the same list twice
        if v in vals.values():
            v = lst[int(rnd() * len(lst))]
        vals[f] = v
    if keep is not None:
        keep.update(vals)
    return tm.format_map(vals)


def _sentences_to(rnd, topic, words: int) -> str:
    """Topic-vocabulary prose of roughly `words` words (used for long texts)."""
    _, tmpls, ctxs, _ = topic
    pool = tmpls + ctxs
    parts, count = [], 0
    while count < words:
        s = _fill(rnd, pool[int(rnd() * len(pool))])
        parts.append(s)
        count += len(s.split())
    return " ".join(parts)


def _quality(rnd_gauss, text: str, has_input: bool, source: str) -> float:
    words = len(text.split())
    q = 0.15 + 0.45 * min(1.0, math.log1p(words) / math.log1p(60))
    if has_input:
        q += 0.1
    stripped = text.rstrip()
    if stripped.endswith(("?", ".", "!")):
        q += 0.05
    q += _SOURCE_OFFSET[source] + rnd_gauss(0.0, 0.07)
    return round(min(1.0, max(0.0, q)), 3)


def _pick_source(rnd, primary: str) -> str:
    if rnd() < 0.6:
        return primary
    return SOURCES[int(rnd() * len(SOURCES))]


def _pick_lang(rnd) -> str:
    return "en" if rnd() < 0.96 else _OTHER_LANGS[int(rnd() * len(_OTHER_LANGS))]


def _near_dup_edit(rnd, s: str) -> str:
    kind = int(rnd() * 6)
    if kind == 0:      # punctuation change
        if s and s[-1] in ".?!":
            return s[:-1] + ("!" if s[-1] != "!" else "?") if rnd() < 0.6 else s[:-1]
        return s + "."
    if kind == 1:      # casing
        return s.lower() if rnd() < 0.5 else s.upper()
    if kind == 2:      # swap one word for a nearby synonym-ish word / adjacent swap
        words = s.split(" ")
        if len(words) >= 4:
            i = 1 + int(rnd() * (len(words) - 2))
            words[i], words[i + 1] = words[i + 1], words[i]
            return " ".join(words)
        return s + " ?"
    if kind == 3:      # trailing whitespace
        return s + ("  " if rnd() < 0.5 else " \t")
    if kind == 4:      # "please" added
        if rnd() < 0.5 and s:
            return "Please " + s[0].lower() + s[1:]
        return s.rstrip(".?!") + ", please" + (s[-1] if s and s[-1] in ".?!" else "")
    # doubled space somewhere
    i = s.find(" ")
    return s[:i] + "  " + s[i + 1:] if i > 0 else s + " "


def _combine(instruction: str | None, inp: str) -> str:
    ins = instruction or ""
    if inp:
        return ins + "\n" + inp if ins else inp
    return ins


def _mess_count(n: int, frac: float) -> int:
    return max(1 if n >= 100 else 0, int(round(n * frac)))


def generate_rows(n: int = 3000, seed: int = 7, *, long_words: int | None = None,
                  mess: bool = True) -> pa.Table:
    """Return `n` synthetic instruction rows as a pyarrow Table (columns: COLUMNS).

    Deterministic in (n, seed, long_words, mess).  With ``mess=True`` the table
    includes ~2% exact duplicates, ~3% near-duplicates, a few empty /
    whitespace-only / null-instruction rows and a few very long rows (600-1500
    words of pasted context).  With ``mess=False`` all rows are clean and all
    `text` values are distinct.  ``long_words`` pads every instruction with
    topic-vocabulary sentences up to roughly that many words.
    """
    if n < 0:
        raise ValueError("n must be >= 0")
    rng = random.Random(seed)
    rnd, gauss = rng.random, rng.gauss

    if mess:
        n_exact = _mess_count(n, 0.02)
        n_near = _mess_count(n, 0.03)
        n_empty = _mess_count(n, 0.002)
        n_ws = _mess_count(n, 0.0013)
        n_null = _mess_count(n, 0.001)
        n_long = _mess_count(n, 0.0023)
    else:
        n_exact = n_near = n_empty = n_ws = n_null = n_long = 0
    n_clean = max(0, n - (n_exact + n_near + n_empty + n_ws + n_null))
    if n_clean == 0:
        n_exact = n_near = 0
        n_clean = n - (n_empty + n_ws + n_null)
    n_long = min(n_long, n_clean)

    # Skewed topic sizes: geometric weights from 4 (first topic) down to 1 (last).
    T = len(_COMPILED)
    weights = [4.0 ** (1.0 - i / (T - 1)) for i in range(T)]
    wsum = sum(weights)
    raw = [n_clean * w / wsum for w in weights]
    counts = [int(x) for x in raw]
    for i in sorted(range(T), key=lambda i: (counts[i] - raw[i], i))[: n_clean - sum(counts)]:
        counts[i] += 1

    seen: set[str] = set()
    rows: list[list] = []   # [instruction, input, text, topic_idx, source, quality, lang]
    for ti, c in enumerate(counts):
        topic = _COMPILED[ti]
        name, tmpls, ctxs, primary = topic
        for _ in range(c):
            for _attempt in range(50):
                keep: dict = {}
                ins = _fill(rnd, tmpls[int(rnd() * len(tmpls))], keep)
                ins = _PREFIXES[int(rnd() * len(_PREFIXES))] + ins + _SUFFIXES[int(rnd() * len(_SUFFIXES))]
                if long_words:
                    have = len(ins.split())
                    if have < long_words:
                        ins = ins + " " + _sentences_to(rnd, topic, long_words - have)
                inp = _fill(rnd, ctxs[int(rnd() * len(ctxs))], keep) if rnd() < 0.4 else ""
                text = _combine(ins, inp)
                if text not in seen:
                    break
            seen.add(text)
            rows.append([ins, inp, text, ti, primary])

    # Very long rows: replace the input of a few clean rows with a long pasted context.
    if n_long:
        for idx in rng.sample(range(len(rows)), n_long):
            r = rows[idx]
            seen.discard(r[2])
            target = 600 + int(rnd() * 901)
            r[1] = _sentences_to(rnd, _COMPILED[r[3]], target)
            r[2] = _combine(r[0], r[1])
            seen.add(r[2])

    # finish clean rows: source, quality, lang
    for r in rows:
        src = _pick_source(rnd, r[4])
        r[4] = src
        r.append(_quality(gauss, r[2], bool(r[1]), src))
        r.append(_pick_lang(rnd))

    n_base = len(rows)
    if mess and n_base:
        # exact duplicates: same instruction/input/text, new id, maybe new source/quality
        for _ in range(n_exact):
            b = rows[int(rnd() * n_base)]
            src = b[4] if rnd() < 0.5 else _pick_source(rnd, _COMPILED[b[3]][3])
            q = b[5] if rnd() < 0.5 else round(min(1.0, max(0.0, b[5] + gauss(0.0, 0.05))), 3)
            rows.append([b[0], b[1], b[2], b[3], src, q, b[6]])
        # near duplicates: small edit of the instruction
        for _ in range(n_near):
            b = rows[int(rnd() * n_base)]
            ins = b[0]
            for _attempt in range(20):
                ins = _near_dup_edit(rnd, ins)
                text = _combine(ins, b[1])
                if text not in seen:
                    break
            seen.add(text)
            src = _pick_source(rnd, _COMPILED[b[3]][3])
            rows.append([ins, b[1], text, b[3], src, _quality(gauss, text, bool(b[1]), src), b[6]])
    if mess:
        for _ in range(n_empty):
            ti = int(rnd() * T)
            src = _pick_source(rnd, _COMPILED[ti][3])
            rows.append(["", "", "", ti, src, round(max(0.0, 0.03 + gauss(0.0, 0.02)), 3), "und"])
        for k in range(n_ws):
            ti = int(rnd() * T)
            ws = _WHITESPACE[k % len(_WHITESPACE)]
            src = _pick_source(rnd, _COMPILED[ti][3])
            rows.append([ws, "", ws, ti, src, round(max(0.0, 0.03 + gauss(0.0, 0.02)), 3), "und"])
        for _ in range(n_null):
            ti = int(rnd() * T)
            inp = _fill(rnd, _COMPILED[ti][2][int(rnd() * len(_COMPILED[ti][2]))])
            src = _pick_source(rnd, _COMPILED[ti][3])
            rows.append([None, inp, inp, ti, src, _quality(gauss, inp, True, src), _pick_lang(rnd)])

    rng.shuffle(rows)

    width = max(6, len(str(max(0, len(rows) - 1))))
    names = [t[0] for t in _COMPILED]
    cols = list(zip(*rows)) if rows else [()] * 7
    return pa.table(
        {
            "id": pa.array([f"p-{i:0{width}d}" for i in range(len(rows))], pa.string()),
            "instruction": pa.array(cols[0], pa.string()),
            "input": pa.array(cols[1], pa.string()),
            "text": pa.array(cols[2], pa.string()),
            "topic": pa.array([names[t] for t in cols[3]], pa.string()),
            "source": pa.array(cols[4], pa.string()),
            "quality": pa.array(cols[5], pa.float64()),
            "lang": pa.array(cols[6], pa.string()),
        }
    )


def _umask() -> int:
    mask = os.umask(0o022)
    os.umask(mask)
    return mask


def write_table(table: pa.Table, out: str | os.PathLike) -> Path:
    """Write `table` atomically; format from the extension (.csv, .parquet, .jsonl)."""
    out = Path(out)
    ext = out.suffix.lower()
    if ext not in (".csv", ".parquet", ".jsonl"):
        raise ValueError(f"unsupported output extension {ext!r} (use .csv, .parquet or .jsonl)")
    out.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=f".{out.name}.", suffix=".tmp", dir=out.parent)
    try:
        if ext == ".csv":
            import pyarrow.csv as pacsv
            os.close(fd)
            pacsv.write_csv(table, tmp, pacsv.WriteOptions(include_header=True))
        elif ext == ".parquet":
            import pyarrow.parquet as pq
            os.close(fd)
            pq.write_table(table, tmp)
        else:
            with os.fdopen(fd, "w", encoding="utf-8", newline="\n") as f:
                names = table.column_names
                for batch in table.to_batches(max_chunksize=65536):
                    cols = [c.to_pylist() for c in batch.columns]
                    for vals in zip(*cols):
                        f.write(json.dumps(dict(zip(names, vals)), ensure_ascii=False))
                        f.write("\n")
        os.chmod(tmp, 0o666 & ~_umask())   # mkstemp creates 0600; use normal file mode
        os.replace(tmp, out)
    except BaseException:
        try:
            os.unlink(tmp)
        except OSError:
            pass
        raise
    return out


def main(argv: list[str] | None = None) -> int:
    here = Path(__file__).resolve().parent
    p = argparse.ArgumentParser(description="Generate synthetic instruction-style prompts.")
    p.add_argument("--rows", type=int, default=3000, help="number of rows (default 3000)")
    p.add_argument("--seed", type=int, default=7, help="random seed (default 7)")
    p.add_argument("--out", default=str(here / "prompts.csv"),
                   help="output path; .csv, .parquet or .jsonl (default sample_data/prompts.csv)")
    p.add_argument("--long-words", type=int, default=None,
                   help="pad every instruction to roughly this many words")
    p.add_argument("--clean", action="store_true", help="no duplicates / empty / long rows")
    a = p.parse_args(argv)
    if Path(a.out).suffix.lower() not in (".csv", ".parquet", ".jsonl"):
        p.error("--out must end in .csv, .parquet or .jsonl")
    if a.rows < 0:
        p.error("--rows must be >= 0")
    t0 = time.perf_counter()
    table = generate_rows(a.rows, a.seed, long_words=a.long_words, mess=not a.clean)
    out = write_table(table, a.out)
    print(f"wrote {table.num_rows} rows to {out} in {time.perf_counter() - t0:.2f}s")
    return 0


if __name__ == "__main__":
    sys.exit(main())
