import os

# Keep the suite deterministic and light on 2-core machines.
os.environ.setdefault('OMP_NUM_THREADS', '2')
os.environ.setdefault('CUDA_VISIBLE_DEVICES', '')
