# -*- coding: utf-8 -*-
"""A stand-in for kubelet: names itself kubelet (/proc/self/comm) and either reads a memory.stat in a
loop the way cAdvisor does (open, read to the end, close) or sleeps.

    python3 standin_kubelet.py read /sys/fs/cgroup/memory/memory.stat
    python3 standin_kubelet.py idle
Started and stopped by pid by the tests.
"""

import os
import sys
import time


def main(argv):
    with open('/proc/self/comm', 'w') as comm:
        comm.write('kubelet')
    if argv[1] == 'idle':
        while True:
            time.sleep(60)
    path = argv[2]
    while True:
        fd = os.open(path, os.O_RDONLY)
        while os.read(fd, 65536):
            pass
        os.close(fd)


if __name__ == '__main__':
    sys.exit(main(sys.argv))
