# The project image that cluster.yaml runs on every node: Ray's GPU image of the Ray we pin, torch's CUDA build and
# every other dependency at its version in requirements/lock.txt, so the head and a worker started days later run
# the same stack, and no node downloads torch at start. Build and push it once (docs/cluster.md):
#   docker build -t elgan-ray:2.60.0-torch2.13.0-cu128 .
FROM rayproject/ray:2.60.0-py311-gpu

# The lock names torch==2.13.0 (made from a CPU install); the nodes get the same version built for CUDA 12.8, whose
# own NVIDIA libraries it pins exactly. pip then finds torch 2.13.0+cu128 satisfies the lock's torch==2.13.0.
ARG TORCH_INDEX=https://download.pytorch.org/whl/cu128
COPY requirements/lock.txt /tmp/lock.txt
RUN pip install --no-cache-dir torch==2.13.0 --index-url ${TORCH_INDEX} \
    && pip install --no-cache-dir -r /tmp/lock.txt

COPY --chown=ray:users . /home/ray/elgan_ray
RUN pip install --no-cache-dir --no-deps -e /home/ray/elgan_ray
