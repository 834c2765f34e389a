"""Unlabeled images with their object proposals.

:class:`ProposalImageDataset` owns the proposals of pre-training: it reads
the proposal file (:func:`read_proposal_file`, the format's one reader) and
puts each image's boxes into its sample; ``LoadProposals`` only works on the
sample, and ``HeatmapProposalHook`` swaps the file through
:meth:`ProposalImageDataset.load_proposals`.
"""
import logging
import os.path as osp
from typing import List, Optional

import numpy as np
from mmengine.dataset import BaseDataset
from mmengine.logging import print_log
from mmpretrain.registry import DATASETS

from ..proposals.proposal_file import (
    ProposalIndex,
    read_proposal_file,
    valid_box_mask,
)
from ..proposals.sources import list_image_dir
from ..utils.boxes import xywh_to_xyxy
from .image_files import (
    _size_agrees,
    check_images_exist,
    image_problem,
    image_size,
)
from .proposal_stats import log_proposal_stats

MISSING_IMAGES = ('error', 'skip')
SIZE_CHECKS = 8  # images whose real size is compared with the file's


@DATASETS.register_module()
class ProposalImageDataset(BaseDataset):
    """Unlabeled images plus object proposals, for CCOP-style pre-training.

    Two layouts:

    * a COCO-style JSON as ``ann_file`` whose ``images`` are the training
      images (the proposal tool's output itself, whose ``annotations`` are the
      proposals; or any COCO annotation file, whose annotations are ignored
      when ``proposal_file`` is given);
    * ``ann_file=''``: every image under ``data_prefix['img_path']``, with the
      proposals of ``proposal_file``.

    Each data info holds ``img_path`` and ``proposals_xywh`` (``(N, 4)``
    float32, COCO ``xywh``, in file order), read by :class:`LoadProposals`.
    An image the proposal file does not list gets no box (the whole image
    stands in, counted). :meth:`load_proposals` swaps the proposal file
    during training (``HeatmapProposalHook``) and keeps the image list.

    Checks when the dataset is built (so a bad file fails at start, not at
    iteration N):

    * the proposal file's structure, every annotation
      (:func:`read_proposal_file`): a malformed ``bbox`` is an error naming
      the file and the annotation id;
    * every image of ``ann_file`` is a non-empty file under the image
      folder: missing and empty (0-byte) ones are an error listing the
      first few, or, with ``missing_images='skip'``, left out, counted and
      logged;
    * the proposals' values: boxes :class:`LoadProposals` will drop
      (non-finite, empty, outside the image's ``width``/``height``) and
      images left without a valid box (the whole image stands in) are
      counted, logged once, and a warning is given when most boxes are
      invalid or most images fall back to the whole image. "Outside the
      image" uses the file's ``width``/``height`` once a header read of a
      few images confirms them; when they disagree with the image files,
      every image's real size is read, a warning says so, and the counts
      are those the pipeline will produce.
      ``self.proposal_stats`` keeps the counts (``ProposalStatsHook`` logs
      them with the run-time counts at every epoch end).

    An image that still cannot be loaded in training (not decodable,
    emptied or removed since the start) is skipped: a warning names the
    file, another image stands in (mmengine's refetch), and
    ``self.unreadable_images`` (``path -> problem``, per process) counts
    them. Any other failure of the pipeline is raised as it is.

    Args:
        ann_file (str): COCO-style JSON, or '' to scan the image folder.
        proposal_file (str, optional): COCO-style proposal JSON; None takes
            the proposals from ``ann_file`` (when ``proposals_from_ann_file``).
        proposals_from_ann_file (bool): Without ``proposal_file``, read the
            proposals from ``ann_file``'s annotations (the proposal tool's
            output). An ``ann_file`` whose annotations have more than one
            category is labelled data (e.g. COCO's ``instances_train2017``),
            not proposals, and is refused: its ground-truth boxes would leak
            into self-supervised training. False: ``ann_file`` is an image
            list only and every image starts without proposals (the whole
            image stands in) until :meth:`load_proposals` (e.g.
            ``HeatmapProposalHook``) gives it some. Defaults to True.
        data_root (str): Root of ``ann_file``, ``proposal_file`` and images.
        data_prefix (dict): ``img_path``: image folder under ``data_root``.
        missing_images (str): ``'error'`` (default): an image of ``ann_file``
            missing on disk or empty (0 bytes) is an error; ``'skip'``:
            train without it (counted and logged). Not checked for remote
            image folders (``s3://...``).
        **kwargs: Other :class:`mmengine.dataset.BaseDataset` arguments
            (``pipeline``, ``indices``, ``serialize_data``...).
    """

    METAINFO = dict(classes=('proposal', ))

    def __init__(self,
                 ann_file: str = '',
                 proposal_file: Optional[str] = None,
                 proposals_from_ann_file: bool = True,
                 data_root: str = '',
                 data_prefix: dict = dict(img_path=''),
                 missing_images: str = 'error',
                 **kwargs) -> None:
        self.proposal_file = proposal_file
        self.proposals_from_ann_file = proposals_from_ann_file
        if proposal_file and data_root and not osp.isabs(proposal_file):
            self.proposal_file = osp.join(data_root, proposal_file)
        if not ann_file and not proposal_file:
            raise ValueError('ProposalImageDataset needs an ann_file (COCO '
                             'JSON) or a proposal_file')
        if missing_images not in MISSING_IMAGES:
            raise ValueError(f'missing_images must be one of '
                             f'{MISSING_IMAGES}, got {missing_images!r}')
        self.missing_images = missing_images
        self.proposal_stats: dict = {}
        # the training images (file names under data_prefix['img_path'])
        # and how many were skipped as missing, fixed when first listed
        self._image_names: Optional[List[str]] = None
        self._skipped_missing = 0
        self.unreadable_images: dict = {}
        super().__init__(
            ann_file=ann_file,
            data_root=data_root,
            data_prefix=data_prefix,
            **kwargs)

    def load_proposals(self, proposal_file: str) -> None:
        """Give every sample the proposals of ``proposal_file``.

        The image list stays as built; the file is read and checked as at
        build time (an error names it; counts are logged and kept in
        ``proposal_stats``) and the data list is rebuilt (and serialised
        again). Data-loader workers hold a copy of the dataset: restart them
        afterwards (``HeatmapProposalHook`` does).

        Args:
            proposal_file (str): COCO-style proposal JSON; a relative path is
                under ``data_root``, as for the constructor.

        Raises:
            ValueError: naming the file when it is malformed or lists none
                of the training images; the samples are left as they were.
        """
        if not proposal_file:
            raise ValueError('load_proposals needs a proposal file')
        if self.data_root and not osp.isabs(proposal_file):
            proposal_file = osp.join(self.data_root, proposal_file)
        old, was_init = self.proposal_file, self._fully_initialized
        self.proposal_file = proposal_file
        self._fully_initialized = False
        try:
            self.full_init()
        except BaseException:  # a bad file: the samples stay as they were
            self.proposal_file, self._fully_initialized = old, was_init
            raise

    def prepare_data(self, idx):
        """The pipeline's sample of ``idx``; None (mmengine then draws
        another index) when its image cannot be loaded."""
        try:
            return super().prepare_data(idx)
        except Exception:
            path = self.get_data_info(idx).get('img_path', '')
            problem = image_problem(path)
            if problem is None:
                raise  # not the image's fault
        if path not in self.unreadable_images:
            self.unreadable_images[path] = problem
            print_log(
                f'ProposalImageDataset: skipped {path}: {problem}; another '
                f'image stands in ({len(self.unreadable_images)} unreadable '
                'images skipped in this process)', logger='current',
                level=logging.WARNING)
        return None

    def load_data_list(self) -> List[dict]:
        """The samples: ``img_path`` and ``proposals_xywh`` of every image.

        The images are listed on the first call (``ann_file``'s images, or
        the image folder); later calls (:meth:`load_proposals`) reuse that
        list and read only the proposal file.
        """
        index = None
        if self._image_names is None:
            self._image_names, index = self._list_images()
            if not self._image_names:
                src = self.ann_file or self.data_prefix.get('img_path', '')
                raise ValueError(
                    f'{src}: no training images (an empty list or folder, '
                    'or every image missing on disk; a proposal file whose '
                    'images all failed lists none, see its .failures.txt)')
        if self.proposal_file:
            index = read_proposal_file(self.proposal_file)
        elif not self.proposals_from_ann_file:
            index = ProposalIndex(path=self.ann_file, names=[],
                                  num_boxes=np.zeros(0, np.int64),
                                  num_valid=np.zeros(0, np.int64),
                                  sizes=np.zeros((0, 2)))
        elif index is None:  # listed before: ann_file holds the proposals
            index = read_proposal_file(self.ann_file)
        if len(index.categories) > 1:
            raise ValueError(
                f'{index.path}: its annotations have several categories '
                f'({", ".join(map(str, index.categories[:3]))}, ...): this '
                'is labelled data, not a proposal file, and its ground-truth '
                'boxes must not feed self-supervised training; give the '
                'proposals as proposal_file, or set '
                'proposals_from_ann_file=False to use it as an image list')
        return self._samples(self._image_names, index)

    def _list_images(self):
        """``(names, index)``: the training images and, when ``ann_file``
        also holds the proposals (no ``proposal_file``), its read index."""
        img_dir = self.data_prefix.get('img_path', '') or ''
        if not self.ann_file:
            return [e.file_name for e in list_image_dir(img_dir)], None
        if not osp.isfile(self.ann_file):
            raise FileNotFoundError(f'{self.ann_file}: no such file')
        listed = read_proposal_file(
            self.ann_file,
            with_boxes=not self.proposal_file and self.proposals_from_ann_file)
        names, self._skipped_missing = self._check_images_exist(
            img_dir, listed.names)
        with_boxes = not self.proposal_file and self.proposals_from_ann_file
        return names, (listed if with_boxes else None)

    def _valid_per_image(self, names: List[str], index: ProposalIndex,
                         img_dir: str):
        """``(num_valid, mismatch)``: the boxes per image of ``index`` the
        pipeline will keep, and how many images' real size disagrees with
        the file's ``width``/``height`` (0 when they agree).

        The file's sizes are checked on :data:`SIZE_CHECKS` listed images
        spread over the list (header reads). When one disagrees, the sizes
        of every listed image are read from its header and the boxes are
        judged against those, as ``LoadProposals`` judges them against the
        loaded image; a warning names the file and an image.
        """
        pos = index.position()
        listed = [(n, pos[n]) for n in names
                  if n in pos and index.sizes_known[pos[n]]]
        if not listed:
            return index.num_valid, 0
        step = max(1, len(listed) // SIZE_CHECKS)
        probe = listed[::step][:SIZE_CHECKS]
        if all(_size_agrees(index.sizes[k], real)
               for real, k in ((image_size(osp.join(img_dir, n)), k)
                               for n, k in probe) if real is not None):
            return index.num_valid, 0
        num_valid = index.num_valid.copy()
        mismatch, example = 0, None
        for n, k in listed:
            real = image_size(osp.join(img_dir, n))
            if real is None or _size_agrees(index.sizes[k], real):
                continue
            mismatch += 1
            example = example or (n, index.sizes[k], real)
            num_valid[k] = int(valid_box_mask(
                xywh_to_xyxy(index.boxes[n]), *real).sum())
        n, (fh, fw), (h, w) = example
        print_log(
            f'ProposalImageDataset: the width/height of {mismatch} of '
            f'{len(listed)} images in {index.path} disagree with the image '
            f'files (e.g. {n!r}: {int(fw)} x {int(fh)} in the file, {w} x '
            f'{h} on disk); the counts below judge their boxes against the '
            'image files, as the pipeline does; were the proposals made on '
            'other (e.g. resized) copies of the images?', logger='current',
            level=logging.WARNING)
        return num_valid, mismatch

    def _samples(self, names: List[str], index: ProposalIndex) -> List[dict]:
        img_dir = self.data_prefix.get('img_path', '') or ''
        pos = index.position()
        num_valid, mismatch = self._valid_per_image(names, index, img_dir)
        empty = np.zeros((0, 4), np.float32)
        data_list = []
        n_listed = n_boxes = n_valid = n_fallback = n_no_box = 0
        for name in names:
            k = pos.get(name)
            if k is None:
                boxes = empty
            else:
                boxes = index.boxes[name]
                n_listed += 1
                n_boxes += int(index.num_boxes[k])
                n_valid += int(num_valid[k])
                n_no_box += int(index.num_boxes[k] == 0)
            n_fallback += int(k is None or num_valid[k] == 0)
            data_list.append(
                dict(img_path=osp.join(img_dir, name), proposals_xywh=boxes))
        src = index.path
        if names and not n_listed and index.names:
            raise ValueError(
                f'{src}: none of the {len(names)} training images is listed '
                f'in this proposal file (e.g. {names[0]!r} vs '
                f'{index.names[0]!r}); its file_name must be the image path '
                'relative to data_prefix["img_path"]')
        self.proposal_stats = dict(
            file=src, images=len(names), skipped_missing=self._skipped_missing,
            not_listed=len(names) - n_listed, no_box=n_no_box,
            boxes=n_boxes, invalid=n_boxes - n_valid, fallback=n_fallback,
            size_mismatch=mismatch)
        self._log_stats()
        return data_list

    def _check_images_exist(self, img_dir: str, names: List[str]):
        """``(names on disk, number skipped)``; raises under ``'error'``."""
        return check_images_exist(img_dir, names, self.ann_file,
                                  self.missing_images)

    def _log_stats(self) -> None:
        log_proposal_stats(self.proposal_stats)


def find_proposal_dataset(dataset) -> Optional[ProposalImageDataset]:
    """The first :class:`ProposalImageDataset` inside dataset wrappers
    (``RepeatDataset``, ``ConcatDataset``, ...), or None."""
    todo = [dataset]
    while todo:
        d = todo.pop(0)
        if isinstance(d, ProposalImageDataset):
            return d
        if hasattr(d, 'dataset'):
            todo.append(d.dataset)
        todo.extend(getattr(d, 'datasets', []) or [])
    return None
