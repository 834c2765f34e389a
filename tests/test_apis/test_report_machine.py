"""The report's Machine section names each machine once."""
from types import SimpleNamespace

from ccop_plugin.apis.report import _machine_section
from ccop_plugin.utils.machine import machine_summary


def _results(machine):
    rec = dict(seconds=1.0, machine=machine)
    return dict(data=rec, proposals=rec,
                ccop=dict(pretrain=rec, finetune=rec))


def test_one_machine_is_named_once():
    here = machine_summary()
    text = '\n'.join(_machine_section(SimpleNamespace(seed=0),
                                      _results(here), ['ccop'], None))
    assert text.count(here) == 1
    assert 'Every stage below was computed on this machine.' in text


def test_stages_from_another_machine_are_listed():
    here = machine_summary()
    text = '\n'.join(_machine_section(SimpleNamespace(seed=0),
                                      _results('another box'), ['ccop'],
                                      None))
    assert f'This report: {here}.' in text
    assert ('Computed on another box: data, proposals, pretrain ccop, '
            'finetune ccop.') in text
