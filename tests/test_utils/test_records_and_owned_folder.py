"""Records (checked read, writer tag, foreign-file refusal) and owned
folders (settings key and diff, manifest of written files)."""
import json

import pytest

from ccop_plugin.utils.owned_folder import (
    Manifest,
    settings_diff,
    settings_key,
)
from ccop_plugin.utils.records import read_record, write_record


def _check(obj, path):
    if not isinstance(obj.get('values'), list):
        raise ValueError(f'{path}: not a test record: values must be a list')


def test_record_is_tagged_checked_and_never_replaces_foreign_files(
        tmp_path):
    path = str(tmp_path / 'r.json')
    obj = write_record(path, dict(values=[1]), 'me', _check)
    assert obj['writer'] == 'me' and read_record(path, _check) == obj
    write_record(path, dict(values=[2]), 'me', _check)  # its own: fine
    with pytest.raises(ValueError, match='values must be a list'):
        write_record(path, dict(values=3), 'me', _check)
    with pytest.raises(FileExistsError, match='not a record of this tool'):
        write_record(path, dict(values=[1]), 'someone else', _check)
    proto = write_record(str(tmp_path / 'p.json'),
                         dict(protocol={}, values=[]), 'me', _check)
    assert proto['protocol']['writer'] == 'me' and 'writer' not in proto
    user = tmp_path / 'user.json'
    user.write_text('not json')
    with pytest.raises(ValueError, match='user.json: not JSON'):
        read_record(str(user))
    with pytest.raises(FileExistsError):
        write_record(str(user), dict(values=[]), 'me', _check)
    assert user.read_text() == 'not json'


def test_settings_key_and_diff():
    a = dict(iters=2, upstream=dict(data='k1'))
    b = dict(iters=4, upstream=dict(data='k2'), new=1)
    assert settings_key(a) == settings_key(dict(reversed(list(a.items()))))
    assert settings_key(a) != settings_key(b)
    assert settings_diff(a, b) == ('iters 2 -> 4, new unset -> 1, '
                                   'upstream.data k1 -> k2')
    assert settings_diff(None, a) == 'recorded before stage keys'
    assert settings_diff(a, a) == 'same settings'


def test_manifest_tells_own_files_from_foreign_and_changed_ones(tmp_path):
    m = Manifest(str(tmp_path), '.owned.json', tool='t')
    assert m.files() == [] and not m.exists
    (tmp_path / 'user.md').write_text('mine')
    m.claim(['a.md'])
    (tmp_path / 'a.md').write_text('written by the tool')
    m.record(['a.md', str(tmp_path / 'missing.png')])
    assert m.files() == ['a.md']
    again = Manifest(str(tmp_path), '.owned.json', tool='t')
    assert again.foreign(['a.md', 'user.md', 'missing.png']) == ['user.md']
    (tmp_path / 'a.md').write_text('edited by a user')
    assert again.foreign(['a.md']) == ['a.md']
    obj = json.loads((tmp_path / '.owned.json').read_text())
    assert obj['tool'] == 't' and obj['files'] == ['a.md']
    (tmp_path / '.owned.json').write_text('{')
    with pytest.raises(FileExistsError, match='unreadable manifest'):
        Manifest(str(tmp_path), '.owned.json', tool='t').files()
