/* A stand-in NVIDIA driver library (libnvidia-ml.so.1) for the GPU tests: there is no GPU here.

   It implements the NVML calls the service makes through the real pynvml (nvidia-ml-py), with the
   ABI of NVML's own header. The GPUs it reports are "name:MiB,name:MiB" (one entry a GPU, in
   index order), read at nvmlInit from NOTEBOOK_JOBS_FAKE_GPUS, else built in (-DFAKE_GPUS=...:
   a Hub's service does not inherit the test's environment). Neither: the driver is "not
   loaded" (NVML_ERROR_DRIVER_NOT_LOADED), as on a host whose library outlived its driver.

   Built by tests/test_gpus.py: gcc -shared -fPIC -Wl,-soname,libnvidia-ml.so.1 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define NVML_SUCCESS 0
#define NVML_ERROR_UNINITIALIZED 1
#define NVML_ERROR_INVALID_ARGUMENT 2
#define NVML_ERROR_INSUFFICIENT_SIZE 7
#define NVML_ERROR_DRIVER_NOT_LOADED 9
#define MAX_GPUS 16

typedef struct { unsigned long long total, free, used; } nvmlMemory_t;
typedef struct { char name[96]; unsigned long long memory; } fake_gpu;

static fake_gpu gpus[MAX_GPUS];
static unsigned int count;
static int inits;

int nvmlInitWithFlags(unsigned int flags) {
    (void)flags;
#ifndef FAKE_GPUS
#define FAKE_GPUS NULL
#endif
    const char *spec = getenv("NOTEBOOK_JOBS_FAKE_GPUS");
    if (!spec) spec = FAKE_GPUS;
    if (!spec) return NVML_ERROR_DRIVER_NOT_LOADED;
    char buf[2048];
    snprintf(buf, sizeof buf, "%s", spec);
    count = 0;
    for (char *save, *entry = strtok_r(buf, ",", &save); entry && count < MAX_GPUS; entry = strtok_r(NULL, ",", &save)) {
        char *colon = strrchr(entry, ':');
        if (!colon) return NVML_ERROR_INVALID_ARGUMENT;
        *colon = '\0';
        snprintf(gpus[count].name, sizeof gpus[count].name, "%s", entry);
        gpus[count].memory = strtoull(colon + 1, NULL, 10) << 20;
        count++;
    }
    inits++;
    return NVML_SUCCESS;
}

int nvmlInit_v2(void) { return nvmlInitWithFlags(0); }

int nvmlShutdown(void) {
    if (!inits) return NVML_ERROR_UNINITIALIZED;
    inits--;
    return NVML_SUCCESS;
}

const char *nvmlErrorString(int result) {
    switch (result) {
    case NVML_SUCCESS: return "Success";
    case NVML_ERROR_UNINITIALIZED: return "Uninitialized";
    case NVML_ERROR_INVALID_ARGUMENT: return "Invalid Argument";
    case NVML_ERROR_INSUFFICIENT_SIZE: return "Insufficient Size";
    case NVML_ERROR_DRIVER_NOT_LOADED: return "Driver Not Loaded";
    default: return "Unknown Error";
    }
}

static int copy(char *out, unsigned int length, const char *text) {
    if (strlen(text) + 1 > length) return NVML_ERROR_INSUFFICIENT_SIZE;
    strcpy(out, text);
    return NVML_SUCCESS;
}

int nvmlSystemGetDriverVersion(char *version, unsigned int length) {
    return inits ? copy(version, length, "0.0-fake") : NVML_ERROR_UNINITIALIZED;
}

int nvmlDeviceGetCount_v2(unsigned int *n) {
    if (!inits) return NVML_ERROR_UNINITIALIZED;
    *n = count;
    return NVML_SUCCESS;
}

/* A device handle is a pointer to the GPU's entry. */
int nvmlDeviceGetHandleByIndex_v2(unsigned int index, fake_gpu **device) {
    if (!inits) return NVML_ERROR_UNINITIALIZED;
    if (index >= count) return NVML_ERROR_INVALID_ARGUMENT;
    *device = &gpus[index];
    return NVML_SUCCESS;
}

int nvmlDeviceGetName(fake_gpu *device, char *name, unsigned int length) {
    return copy(name, length, device->name);
}

int nvmlDeviceGetUUID(fake_gpu *device, char *uuid, unsigned int length) {
    char text[64];
    snprintf(text, sizeof text, "GPU-fa4e0000-0000-4000-8000-%012d", (int)(device - gpus));
    return copy(uuid, length, text);
}

int nvmlDeviceGetMemoryInfo(fake_gpu *device, nvmlMemory_t *memory) {
    memory->total = device->memory;
    memory->used = 0;
    memory->free = device->memory;
    return NVML_SUCCESS;
}
