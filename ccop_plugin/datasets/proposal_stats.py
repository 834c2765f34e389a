"""The proposal statistics of a :class:`ProposalImageDataset`: the log
line and the warnings when most boxes or images are unusable."""
import logging

from mmengine.logging import print_log


def _pct(a: int, b: int) -> str:
    return f'{100.0 * a / b:.1f}%' if b else '0%'


def format_proposal_stats(s: dict) -> str:
    """One log line of :attr:`ProposalImageDataset.proposal_stats`."""
    line = (f'ProposalImageDataset: {s["images"]} images, {s["boxes"]} '
            f'proposals from {s["file"]}: {s["invalid"]} invalid '
            f'({_pct(s["invalid"], s["boxes"])}) will be dropped; '
            f'{s["fallback"]} images ({_pct(s["fallback"], s["images"])}) '
            f'use the whole image ({s["not_listed"]} not in the file, '
            f'{s["no_box"]} without a box, '
            f'{s["fallback"] - s["not_listed"] - s["no_box"]} with only '
            'invalid boxes)')
    if s.get('skipped_missing'):
        line += (f'; {s["skipped_missing"]} missing or empty images '
                 'skipped')
    return line


def log_proposal_stats(s: dict) -> None:
    """Log :func:`format_proposal_stats` and warn when more than half of
    the proposals are invalid or more than half of the images fall back to
    the whole image."""
    print_log(format_proposal_stats(s), logger='current')
    if s['boxes'] and s['invalid'] * 2 > s['boxes']:
        print_log(
            f'ProposalImageDataset: {s["invalid"]} of {s["boxes"]} '
            f'proposals in {s["file"]} ({_pct(s["invalid"], s["boxes"])})'
            ' are invalid (non-finite, empty or outside the image) and '
            'will be dropped; check the file (COCO bbox is [x, y, width, '
            'height] in pixels) or regenerate it with '
            'tools/selective_search.py', logger='current',
            level=logging.WARNING)
    elif s['images'] and s['fallback'] * 2 > s['images']:
        print_log(
            f'ProposalImageDataset: {s["fallback"]} of {s["images"]} '
            f'images ({_pct(s["fallback"], s["images"])}) have no valid '
            f'proposal in {s["file"]}; the whole image stands in for '
            'them', logger='current', level=logging.WARNING)
