"""One writer per folder: FolderLock refuses a second holder by name."""
import subprocess
import sys

import pytest

from ccop_plugin.utils.folder_lock import (
    HOLDER_FILE,
    FolderInUseError,
    FolderLock,
)


@pytest.mark.slow
def test_second_exclusive_holder_is_refused_naming_the_first(tmp_path):
    folder = tmp_path / 'w'
    with FolderLock(str(folder)):
        assert (folder / HOLDER_FILE).is_file()
        code = (
            'import sys\n'
            'from ccop_plugin.utils.folder_lock import (FolderLock,\n'
            '    FolderInUseError)\n'
            'try:\n'
            f'    FolderLock({str(folder)!r})\n'
            'except FolderInUseError as e:\n'
            '    print(e); sys.exit(3)\n')
        out = subprocess.run([sys.executable, '-c', code], capture_output=True,
                             text=True)
        assert out.returncode == 3
        line = out.stdout.strip()
        assert '\n' not in line and str(folder) in line and 'pid' in line
    assert not (folder / HOLDER_FILE).exists()
    with FolderLock(str(folder)):  # released: a new run may take it
        pass


def test_shared_holders_coexist_and_keep_exclusive_out(tmp_path):
    a = FolderLock(str(tmp_path), exclusive=False)
    b = FolderLock(str(tmp_path), exclusive=False)
    # flock is per open file description, so a second exclusive open in
    # this process conflicts just like another process would
    with pytest.raises(FolderInUseError, match='in use'):
        FolderLock(str(tmp_path))
    a.close()
    b.close()
    FolderLock(str(tmp_path)).close()
