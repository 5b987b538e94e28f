#!/bin/sh
# Remake the pictures of docs/gallery (run from the repository root; about 40 minutes of
# CPU on 2 cores, mostly the two training runs). Needs: pip install ".[viz]", and for the
# activation-page screenshot a Chromium (Debian: apt-get install -y chromium).
set -eu
G=docs/gallery

# two character models on the offline stdlib corpus, 1320 steps each (the LSTM of the
# pictures was stopped by a time limit after epoch 1 and resumed with --resume)
rnnlab train --max-chars 1000000 --hidden-size 128 --embedding-dim 64 --epochs 3 \
    --log-every 20 --no-progress --sample-length 0 --out runs/stdlib-lstm
rnnlab train --max-chars 1000000 --cell gru --hidden-size 128 --embedding-dim 64 --epochs 3 \
    --log-every 20 --no-progress --sample-length 0 --out runs/stdlib-gru

rnnlab plot curves runs/stdlib-lstm runs/stdlib-gru --smooth 3 --compact --out $G/curves.png
rnnlab plot hidden runs/stdlib-lstm/best.safetensors --max-tokens 800 --skip 20 --compact \
    --out $G/hidden.png
rnnlab plot predictions runs/stdlib-lstm/best.safetensors --start 20 --length 76 --compact \
    --out $G/predictions.png --string 'class Stack:
    def __init__(self):
        self.items = []

    def push(self, item):
        self.items.append(item)
'
rnnlab plot gradients --steps 300 --compact --out $G/gradients.png
# unit 69 is the bracket unit of the pictured run; another run ranks its units anew
# (open the page, or look at its "Best units for each property" table)
rnnlab plot activations runs/stdlib-lstm/best.safetensors --out runs/activations.html \
    --screenshot $G/activations.png --unit 69 --underline "inside brackets" --compact
