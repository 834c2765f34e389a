"""Ctrl-C stops a staged tool with one line and status 130, not a
traceback (finished stages are kept; the same command resumes)."""
import pytest

from ccop_plugin.apis import comparison_cli, main_job, main_job_cli, sweep_cli
from ccop_plugin.apis.stage import STOPPED_BY_USER


def _interrupt(*args, **kwargs):
    raise KeyboardInterrupt


@pytest.mark.parametrize('tool, patch, argv', [
    ('compare_pretraining.py', (comparison_cli, 'run_comparison'),
     ['--seeds', '1', '--no-probe']),
    ('sweep_budget.py', (sweep_cli, 'run_sweep'), []),
    ('run_demo.py', (main_job, 'run_main_job'), ['--device', 'cpu']),
])
def test_ctrl_c_is_one_line_and_status_130(tool, patch, argv, tmp_path,
                                           monkeypatch, capsys):
    monkeypatch.setattr(*patch, _interrupt)
    main = dict(zip(['compare_pretraining.py', 'sweep_budget.py',
                     'run_demo.py'],
                    [comparison_cli.main, sweep_cli.main,
                     main_job_cli.main]))[tool]
    try:
        rc = main(['--work-dir', str(tmp_path / 'w')] + argv)
    except KeyboardInterrupt:  # would stop the whole test session
        pytest.fail(f'{tool}: Ctrl-C escaped as a traceback')
    assert rc == STOPPED_BY_USER == 130
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1, err
    assert err[0].startswith(f'{tool}: stopped (Ctrl-C)')
    assert 'resumes' in err[0]
