// Package api holds the names users and other programs see: edgemigrate's CRD types,
// annotation and label keys, and the NVIDIA names edgemigrate reads. Each is defined here
// once.
package api

// Names that NVIDIA's device plugin and GPU Feature Discovery put on GPU nodes.
const (
	// ResourceGPU is the device plugin's extended resource: GPU slots, time-sliced when
	// LabelGPUReplicas is above one. It counts slots, not memory.
	ResourceGPU = "nvidia.com/gpu"

	LabelGPUPresent         = "nvidia.com/gpu.present"
	LabelGPUProduct         = "nvidia.com/gpu.product"
	LabelGPUFamily          = "nvidia.com/gpu.family"
	LabelGPUCount           = "nvidia.com/gpu.count"
	LabelGPUMemory          = "nvidia.com/gpu.memory" // MiB
	LabelGPUComputeMajor    = "nvidia.com/gpu.compute.major"
	LabelGPUComputeMinor    = "nvidia.com/gpu.compute.minor"
	LabelGPUReplicas        = "nvidia.com/gpu.replicas"
	LabelGPUSharingStrategy = "nvidia.com/gpu.sharing-strategy"

	// SharedProductSuffix is appended to LabelGPUProduct when the GPU is time-sliced.
	SharedProductSuffix = "-SHARED"
)
