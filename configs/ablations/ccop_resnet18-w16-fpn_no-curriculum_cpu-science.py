# Ablation (`make science` method `ccop_no_curriculum_science`): CCOP
# without the spatial-noise curriculum. The curriculum stays at its start
# values for the whole run (IoU threshold 0.8, mag_xy 0.15, mag_wh 0.35): start
# == end, so CurriculumHook keeps (and logs) constant values.
_base_ = ['../ccop/ccop_resnet18-w16-fpn_cpu-science.py']

model = dict(
    curriculum=dict(iou_thr=(0.8, 0.8), mag_xy=(0.15, 0.15),
                    mag_wh=(0.35, 0.35)))
