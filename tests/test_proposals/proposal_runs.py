"""Small helpers shared by the proposal-tool tests: a quiet library run of
the tool and a byte reader."""
import os.path as osp

from ccop_plugin.proposals import (
    RunOptions,
    get_preset,
    list_image_dir,
    run_proposals,
)


def quiet(*a, **k):
    pass


def run(img_dir, tmp, name='out', cfg=None, **kw):
    """``run_proposals`` on ``img_dir`` with one worker and no output;
    ``(output path, summary)``."""
    entries = kw.pop('entries', None) or list_image_dir(img_dir)
    out = kw.pop('out', None) or osp.join(tmp, f'{name}.json')
    kw.setdefault('workers', 1)
    kw.setdefault('log', quiet)
    s = run_proposals(entries, img_dir, cfg or get_preset('ccop'),
                      osp.join(tmp, f'{name}.work'),
                      RunOptions(out=out, progress=False, **kw))
    return out, s


def read(path):
    with open(path, 'rb') as f:
        return f.read()
