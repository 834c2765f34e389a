"""The training side does not load the selective-search machinery."""
import json
import os
import subprocess
import sys

import pytest

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(
    os.path.abspath(__file__))))
HEAVY = {'ccop_plugin.proposals.runner', 'ccop_plugin.proposals.search',
         'ccop_plugin.proposals.visualize'}
CODE = '''
import json, sys

def loaded():
    return sorted(m for m in sys.modules
                  if m.startswith('ccop_plugin.proposals'))

import ccop_plugin
after_import = loaded()
from ccop_plugin.proposals import draw_proposals, run_proposals
import ccop_plugin.proposals as p
try:
    p.no_such_name
    missing = False
except AttributeError:
    missing = True
print(json.dumps(dict(
    after_import=after_import, after_use=loaded(),
    same=p.run_proposals is run_proposals, missing=missing,
    listed='propose' in p.__all__ and 'propose' in dir(p))))
'''


@pytest.mark.slow
def test_import_ccop_plugin_loads_only_the_file_format():
    env = dict(os.environ, PYTHONPATH=ROOT + os.pathsep +
               os.environ.get('PYTHONPATH', ''))
    out = subprocess.run([sys.executable, '-c', CODE], env=env,
                         capture_output=True, text=True, timeout=300,
                         check=True)
    r = json.loads(out.stdout.strip().splitlines()[-1])
    assert not HEAVY & set(r['after_import']), r['after_import']
    # the file format (its reader/writer and the reader's entry checks)
    assert r['after_import'] == ['ccop_plugin.proposals',
                                 'ccop_plugin.proposals.proposal_checks',
                                 'ccop_plugin.proposals.proposal_file',
                                 'ccop_plugin.proposals.sources']
    # the package's names still work, loaded on first use
    assert HEAVY <= set(r['after_use'])
    assert r['same'] and r['missing'] and r['listed']
