"""Request bodies for the load benchmark, from a bundle's own users: each user's history before their last
item (at most the last 50, what SASRec reads), as catalogue ids, top-10.
Usage: python3 bodies.py BUNDLE MODEL N > bodies.jsonl   (MODEL: pulse-ts | hybrid)"""
import json, sys

bundle, model, n = sys.argv[1], sys.argv[2], int(sys.argv[3])
ids = [json.loads(l)["id"] for l in open(f"{bundle}/catalogue.jsonl")]
out = 0
for line in open(f"{bundle}/users.jsonl"):
    items = json.loads(line)["items"]
    if len(items) < 2:
        continue
    h = [ids[i] for i in items[:-1][-50:]]
    print(json.dumps({"history": h, "k": 10, "model": model}))
    out += 1
    if out == n:
        break
