#!/usr/bin/env python
"""Generate the embedded synthetic COCO dataset (textured shapes).

    python tools/generate_dataset.py --out data/synth --seed 0

Writes images/{unlabeled,train,val}/, annotations/unlabeled.json (image list
for pre-training), annotations/instances_{train,val}.json (boxes + RLE masks)
and meta.json. A finished dataset with the same parameters is left as is.

The tool writes only into a new or empty folder or one it wrote before (its
manifest .ccop_datagen_manifest.json lists the files it wrote); it never
replaces or deletes a file it did not write, and refuses a non-empty folder of
other files with a one-line error. A failed write (e.g. a full disk) ends it
with one line naming the file; every file is replaced atomically, so each
file is either the old one or the new one.
"""
import sys

from ccop_plugin.datagen.cli import main

if __name__ == '__main__':
    sys.exit(main())
