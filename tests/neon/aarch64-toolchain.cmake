# Cross-compiling for aarch64 Linux with Debian's g++-aarch64-linux-gnu; ctest
# runs the test binaries under qemu-user (binfmt_misc is not needed).
#   cmake -S tests/neon -B build/neon-aarch64 -G Ninja \
#         -DCMAKE_TOOLCHAIN_FILE=tests/neon/aarch64-toolchain.cmake
set(CMAKE_SYSTEM_NAME Linux)
set(CMAKE_SYSTEM_PROCESSOR aarch64)
set(CMAKE_C_COMPILER aarch64-linux-gnu-gcc)
set(CMAKE_CXX_COMPILER aarch64-linux-gnu-g++)

set(MBV2_AARCH64_SYSROOT /usr/aarch64-linux-gnu)
set(CMAKE_FIND_ROOT_PATH ${MBV2_AARCH64_SYSROOT})
set(CMAKE_FIND_ROOT_PATH_MODE_PROGRAM NEVER)
set(CMAKE_FIND_ROOT_PATH_MODE_LIBRARY ONLY)
set(CMAKE_FIND_ROOT_PATH_MODE_INCLUDE ONLY)
set(CMAKE_FIND_ROOT_PATH_MODE_PACKAGE ONLY)

# -L: where qemu finds the aarch64 dynamic loader and libstdc++.
set(CMAKE_CROSSCOMPILING_EMULATOR qemu-aarch64;-L;${MBV2_AARCH64_SYSROOT})
