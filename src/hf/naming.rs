//! The one naming rule between positio's module tree and Hugging Face BERT tensor names, and
//! the one walk over a module's parameters by that name. Loading, saving, the optimizer state
//! and checkpoints all go through it, so they cannot disagree.

use burn::module::{Module, ModuleMapper, ModuleVisitor, Param, ParamId};
use burn::tensor::{Tensor, TensorData};

/// Hugging Face's name for the parameter at a positio module path (segments joined by '.').
pub fn hf_name(path: &[String]) -> String {
    let p: Vec<&str> = path.iter().map(String::as_str).collect();
    let mapped: Vec<&str> = match p.as_slice() {
        ["embeddings", "layer_norm", rest @ ..] => [&["embeddings", "LayerNorm"], rest].concat(),
        ["encoder", "layer", i, "attention", proj @ ("query" | "key" | "value"), rest @ ..] => {
            [&["encoder", "layer", i, "attention", "self", proj], rest].concat()
        }
        ["encoder", "layer", i, "attention", "output", rest @ ..] => [
            &["encoder", "layer", i, "attention", "output", "dense"],
            rest,
        ]
        .concat(),
        ["encoder", "layer", i, "attention_norm", rest @ ..] => [
            &["encoder", "layer", i, "attention", "output", "LayerNorm"],
            rest,
        ]
        .concat(),
        ["encoder", "layer", i, "intermediate", rest @ ..] => {
            [&["encoder", "layer", i, "intermediate", "dense"], rest].concat()
        }
        ["encoder", "layer", i, "output", rest @ ..] => {
            [&["encoder", "layer", i, "output", "dense"], rest].concat()
        }
        ["encoder", "layer", i, "output_norm", rest @ ..] => {
            [&["encoder", "layer", i, "output", "LayerNorm"], rest].concat()
        }
        // PyTorch's nn.LSTM / nn.GRU names: weight_ih_l0, bias_hh_l1_reverse, ...
        ["encoder", "rnn", "layer", i, direction, param] => {
            let suffix = if *direction == "reverse" {
                "_reverse"
            } else {
                ""
            };
            return format!("encoder.rnn.{param}_l{i}{suffix}");
        }
        ["pooler", rest @ ..] => [&["pooler", "dense"], rest].concat(),
        ["head", "transform", rest @ ..] => {
            [&["cls", "predictions", "transform", "dense"], rest].concat()
        }
        ["head", "layer_norm", rest @ ..] => {
            [&["cls", "predictions", "transform", "LayerNorm"], rest].concat()
        }
        ["head", "bias"] => vec!["cls", "predictions", "bias"],
        ["bert", rest @ ..] => {
            return format!(
                "bert.{}",
                hf_name(&rest.iter().map(|s| s.to_string()).collect::<Vec<_>>())
            )
        }
        _ => p,
    };
    mapped.join(".")
}

/// Sees each float parameter with its Hugging Face name.
pub(crate) trait NamedVisitor {
    fn visit<const D: usize>(&mut self, name: &str, param: &Param<Tensor<D>>);
}

/// Maps each float parameter, given its Hugging Face name.
pub(crate) trait NamedMapper {
    fn map<const D: usize>(&mut self, name: &str, param: Param<Tensor<D>>) -> Param<Tensor<D>>;
}

/// Tracks the module path during a walk and hands each parameter on by name.
struct Walk<T> {
    path: Vec<String>,
    inner: T,
}

impl<T: NamedVisitor> ModuleVisitor for Walk<T> {
    fn enter_module(&mut self, name: &str, _: &str) {
        self.path.push(name.to_string());
    }
    fn exit_module(&mut self, _: &str, _: &str) {
        self.path.pop();
    }
    fn visit_float<const D: usize>(&mut self, param: &Param<Tensor<D>>) {
        self.inner.visit(&hf_name(&self.path), param);
    }
}

impl<T: NamedMapper> ModuleMapper for Walk<T> {
    fn enter_module(&mut self, name: &str, _: &str) {
        self.path.push(name.to_string());
    }
    fn exit_module(&mut self, _: &str, _: &str) {
        self.path.pop();
    }
    fn map_float<const D: usize>(&mut self, param: Param<Tensor<D>>) -> Param<Tensor<D>> {
        let name = hf_name(&self.path);
        self.inner.map(&name, param)
    }
}

/// Visits every float parameter of `module` by name; returns the visitor.
pub(crate) fn visit_named<M: Module, T: NamedVisitor>(module: &M, visitor: T) -> T {
    let mut walk = Walk {
        path: Vec::new(),
        inner: visitor,
    };
    module.visit(&mut walk);
    walk.inner
}

/// Maps every float parameter of `module` by name; returns the module and the mapper.
pub(crate) fn map_named<M: Module, T: NamedMapper>(module: M, mapper: T) -> (M, T) {
    let mut walk = Walk {
        path: Vec::new(),
        inner: mapper,
    };
    let module = module.map(&mut walk);
    (module, walk.inner)
}

/// The parameters of `module` by Hugging Face name, in module order.
pub fn named_parameters<M: Module>(module: &M) -> Vec<(String, TensorData)> {
    struct Collect(Vec<(String, TensorData)>);
    impl NamedVisitor for Collect {
        fn visit<const D: usize>(&mut self, name: &str, param: &Param<Tensor<D>>) {
            self.0
                .push((name.to_string(), param.val().into_data().convert::<f32>()));
        }
    }
    visit_named(module, Collect(Vec::new())).0
}

/// Every float parameter's id and Hugging Face name.
pub fn parameter_names<M: Module>(module: &M) -> Vec<(ParamId, String)> {
    struct Names(Vec<(ParamId, String)>);
    impl NamedVisitor for Names {
        fn visit<const D: usize>(&mut self, name: &str, param: &Param<Tensor<D>>) {
            self.0.push((param.id, name.to_string()));
        }
    }
    visit_named(module, Names(Vec::new())).0
}
