"""
Writes the sample catalog that `make run` loads and the benchmarks import:
catalog/fixtures/sample_catalog.csv, deterministic (same seed, same file).

    python scripts/make_sample_catalog.py [--items 3000] [--out PATH]
"""

import argparse
import csv
import random
from collections.abc import Iterator
from decimal import Decimal
from pathlib import Path

# fmt: off
CATEGORIES = {
    "kitchen": ("Kitchen", ["Skillet", "Chef's Knife", "Cutting Board", "Kettle", "Colander",
                            "Whisk", "Saucepan", "Spice Rack", "Mixing Bowl", "Teapot"]),
    "garden": ("Garden", ["Trowel", "Watering Can", "Pruning Shears", "Hose Reel", "Planter",
                          "Rake", "Seed Tray", "Garden Gloves", "Wheelbarrow", "Sprinkler"]),
    "electronics": ("Electronics", ["USB-C Cable", "Headphones", "Power Bank", "Speaker",
                                    "Webcam", "Keyboard", "Mouse", "Charger", "Monitor Arm",
                                    "SD Card"]),
    "books": ("Books", ["Cookbook", "Field Guide", "Atlas", "Novel", "Poetry Collection",
                        "Travel Guide", "Sketchbook", "Notebook", "Dictionary", "Almanac"]),
    "toys": ("Toys", ["Puzzle", "Building Blocks", "Kite", "Yo-Yo", "Board Game", "Plush Bear",
                      "Train Set", "Marbles", "Spinning Top", "Card Game"]),
    "outdoor": ("Outdoor", ["Tent", "Sleeping Bag", "Headlamp", "Water Bottle", "Camp Stove",
                            "Hammock", "Backpack", "Trekking Poles", "Compass", "Cooler"]),
    "office": ("Office", ["Desk Lamp", "Stapler", "Pen Set", "Desk Organizer", "Whiteboard",
                          "Paper Tray", "Label Maker", "Letter Opener", "Binder", "Clipboard"]),
    "bath": ("Bath", ["Towel", "Bath Mat", "Soap Dish", "Shower Caddy", "Toothbrush Holder",
                      "Robe", "Washcloth Set", "Mirror", "Loofah", "Tumbler"]),
    "lighting": ("Lighting", ["Floor Lamp", "Pendant Light", "LED Strip", "Lantern",
                              "String Lights", "Night Light", "Wall Sconce", "Bulb Pack",
                              "Table Lamp", "Reading Light"]),
    "tools": ("Tools", ["Hammer", "Screwdriver Set", "Tape Measure", "Level", "Wrench",
                        "Pliers", "Utility Knife", "Drill Bits", "Stud Finder", "Clamp"]),
    "sports": ("Sports", ["Yoga Mat", "Jump Rope", "Dumbbell", "Tennis Balls", "Football",
                          "Swim Goggles", "Resistance Band", "Water Polo Ball", "Bike Light",
                          "Foam Roller"]),
    "pet-supplies": ("Pet Supplies", ["Dog Leash", "Cat Tree", "Pet Bed", "Food Bowl",
                                      "Chew Toy", "Litter Scoop", "Bird Feeder", "Grooming Brush",
                                      "Aquarium Net", "Pet Carrier"]),
}
ADJECTIVES = ["Classic", "Compact", "Deluxe", "Eco", "Everyday", "Heavy-Duty", "Lightweight",
              "Mini", "Premium", "Pro", "Rustic", "Smart", "Sturdy", "Travel", "Vintage"]
COLOURS = ["Black", "White", "Slate", "Sage", "Navy", "Terracotta", "Oak", "Steel", "Sand",
           "Red", "Teal", "Charcoal"]
# fmt: on
FIELDS = ["sku", "name", "description", "price", "stock", "category", "category_name", "enable"]


def rows(count: int, seed: int = 42) -> Iterator[dict[str, object]]:
    rnd = random.Random(seed)
    slugs = list(CATEGORIES)
    for n in range(count):
        slug = slugs[n % len(slugs)]
        title, nouns = CATEGORIES[slug]
        noun = rnd.choice(nouns)
        adjective, colour = rnd.choice(ADJECTIVES), rnd.choice(COLOURS)
        price = Decimal(rnd.randint(199, 49999)) / 100
        yield {
            "sku": f"{slug[:3].upper()}-{n:06d}",
            "name": f"{adjective} {noun}, {colour}",
            "description": f"A {adjective.lower()} {noun.lower()} in {colour.lower()}, "
            f"from our {title.lower()} range.",
            "price": f"{price:.2f}",
            "stock": 0 if rnd.random() < 0.08 else rnd.randint(1, 500),
            "category": slug,
            "category_name": title,
            "enable": "false" if rnd.random() < 0.05 else "true",
        }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--items", type=int, default=3000)
    parser.add_argument(
        "--out",
        type=Path,
        default=Path(__file__).resolve().parent.parent / "catalog/fixtures/sample_catalog.csv",
    )
    args = parser.parse_args()
    args.out.parent.mkdir(parents=True, exist_ok=True)
    with args.out.open("w", newline="", encoding="utf-8") as stream:
        writer = csv.DictWriter(stream, fieldnames=FIELDS)
        writer.writeheader()
        writer.writerows(rows(args.items))
    print(f"wrote {args.items} items to {args.out}")


if __name__ == "__main__":
    main()
