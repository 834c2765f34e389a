"""The proposal-recall benchmark: its settings and the refusal to replace
records it was not asked to replace."""
import pytest

from ccop_plugin.benchmarks import proposal_recall as pr


def test_settings_add_the_checkpoint_row_only_when_given():
    labels = [s[0] for s in pr.settings(None)]
    assert labels == ['ss ccop', 'ss ccop --max-size 320', 'ss soco',
                      'ss soco --max-size 320', 'heat-map R18 random init']
    extra = pr.settings('/w/iter_100.pth')[-1]
    assert extra == ('heat-map iter_100.pth', 'heatmap',
                     dict(checkpoint='/w/iter_100.pth'))


def test_existing_record_is_refused_before_any_work(tmp_path):
    md = tmp_path / 'recall.md'
    md.write_text('kept')
    work = tmp_path / 'work'
    args = pr.parse_args(['--work-dir', str(work), '--out-md', str(md),
                          '--out-json', str(tmp_path / 'recall.json')])
    with pytest.raises(pr.RecallBenchmarkError,
                       match=f'^{md}: exists; pass --overwrite'):
        pr.run_recall_benchmark(args, pr.command_line([]))
    assert md.read_text() == 'kept' and not work.exists()


def test_command_line_is_the_tools():
    assert pr.command_line(['--img-sizes', '128']) == (
        'python tools/benchmark_proposal_recall.py --img-sizes 128')
