// The stand-in's model catalogue: a few small model cards in exo's camelCase ModelCard shape.

function card(id, nLayers, hidden, kv, tensor, family, quant, base, caps, ctx, bytes, sampling) {
  return {
    modelId: id,
    storageSize: { inBytes: bytes },
    nLayers,
    hiddenSize: hidden,
    supportsTensor: tensor,
    numKeyValueHeads: kv,
    tasks: ['TextGeneration'],
    components: null,
    family,
    quantization: quant,
    baseModel: base,
    capabilities: caps,
    backends: ['MlxMetal', 'MlxCuda', 'MlxCpu'],
    reasoningDialect: 'none',
    contextLength: ctx,
    usesCfg: false,
    trustRemoteCode: true,
    isCustom: false,
    vision: null,
    samplingDefaults: {
      temperature: null,
      topP: null,
      topK: null,
      minP: null,
      repetitionPenalty: null,
      presencePenalty: null,
      frequencyPenalty: null,
      thinking: null,
      nonThinking: null,
      ...sampling,
    },
  };
}

export const CATALOGUE = [
  card(
    'mlx-community/Llama-3.2-1B-Instruct-4bit',
    16,
    2048,
    8,
    true,
    'llama',
    '4bit',
    'Llama 3.2 1B',
    ['text'],
    131072,
    729808896,
    { temperature: 0.6, topP: 0.9 },
  ),
  card(
    'mlx-community/Llama-3.2-3B-Instruct-4bit',
    28,
    3072,
    8,
    true,
    'llama',
    '4bit',
    'Llama 3.2 3B',
    ['text'],
    131072,
    1863319552,
    { temperature: 0.6, topP: 0.9 },
  ),
  card(
    'mlx-community/Qwen3-0.6B-4bit',
    28,
    1024,
    8,
    false,
    'qwen',
    '4bit',
    'Qwen3 0.6B',
    ['text', 'thinking', 'thinking_toggle'],
    32768,
    342884352,
    { temperature: 0.6, topP: 0.95, topK: 20, minP: 0 },
  ),
];

export const cardFor = (id) => CATALOGUE.find((c) => c.modelId === id) || null;

/** Shard metadata of a model for one rank (exo's PipelineShardMetadata / TensorShardMetadata body). */
export function shard(c, rank, world, start = 0, end = c.nLayers) {
  return {
    modelCard: c,
    deviceRank: rank,
    worldSize: world,
    immediateException: false,
    shouldTimeout: null,
    startLayer: start,
    endLayer: end,
    nLayers: c.nLayers,
  };
}
