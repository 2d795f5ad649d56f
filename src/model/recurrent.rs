//! Recurrent encoders: stacked LSTM or GRU layers, one direction (a causal LM) or two (BiLSTM,
//! BiGRU), in place of the Transformer blocks and behind the same embeddings and heads.
//!
//! Weights follow PyTorch's `nn.LSTM` / `nn.GRU` (gate order, two biases, uniform
//! initialisation in ±1/√H), and checkpoints name them as PyTorch does (`weight_ih_l0`,
//! `weight_hh_l0_reverse`, ... under `encoder.rnn.`), so a PyTorch state dict loads unchanged.
//! `hidden_size` is the width of the states the heads see: each direction has
//! `hidden_size / directions` units.
//!
//! Per layer: one matrix product projects every time step's input for both directions at once,
//! then the fused recurrence kernel walks time (see `kernels::recurrence`).

use crate::kernels::{self, recurrence::Cell, RecurrenceOptions};
use crate::model::config::ModelConfig;
use burn::module::{Module, Param};
use burn::nn::{Dropout, DropoutConfig};
use burn::tensor::{Device, Distribution, Tensor};

/// One direction of one layer (PyTorch's four tensors).
#[derive(Module, Debug)]
pub struct Direction {
    /// `[G·H, in]`
    pub weight_ih: Param<Tensor<2>>,
    /// `[G·H, H]`
    pub weight_hh: Param<Tensor<2>>,
    pub bias_ih: Param<Tensor<1>>,
    pub bias_hh: Param<Tensor<1>>,
}

impl Direction {
    fn new(cell: Cell, d_in: usize, hidden: usize, device: &Device) -> Self {
        let k = 1.0 / (hidden as f64).sqrt();
        let gh = cell.gates() * hidden;
        let u = Distribution::Uniform(-k, k);
        Direction {
            weight_ih: Param::from_tensor(Tensor::random([gh, d_in], u, device)),
            weight_hh: Param::from_tensor(Tensor::random([gh, hidden], u, device)),
            bias_ih: Param::from_tensor(Tensor::random([gh], u, device)),
            bias_hh: Param::from_tensor(Tensor::random([gh], u, device)),
        }
    }
}

/// One layer: the forward direction, and the reverse one when bidirectional.
#[derive(Module, Debug)]
pub struct RecurrentLayer {
    pub forward: Direction,
    pub reverse: Option<Direction>,
}

impl RecurrentLayer {
    fn directions(&self) -> Vec<&Direction> {
        std::iter::once(&self.forward)
            .chain(self.reverse.as_ref())
            .collect()
    }

    /// `[batch, len, in]` → `[batch, len, directions·H]`.
    fn run(&self, x: Tensor<3>, mask: Tensor<2>, cell: Cell) -> Tensor<3> {
        let [b, len, d_in] = x.dims();
        let dirs = self.directions();
        let cat1 =
            |f: fn(&Direction) -> Tensor<1>| Tensor::cat(dirs.iter().map(|d| f(d)).collect(), 0);
        let cat2 =
            |f: fn(&Direction) -> Tensor<2>| Tensor::cat(dirs.iter().map(|d| f(d)).collect(), 0);
        let w_ih = cat2(|d| d.weight_ih.val());
        let gates = w_ih.dims()[0];
        // [b·len, in] × [in, dirs·G·H]: every step's input projection, both directions.
        let xproj = kernels::linear(
            x.reshape([b * len, d_in]),
            w_ih,
            Some(cat1(|d| d.bias_ih.val())),
        )
        .reshape([b, len, gates]);
        kernels::recurrence(
            xproj,
            cat2(|d| d.weight_hh.val()),
            cat1(|d| d.bias_hh.val()),
            mask,
            RecurrenceOptions {
                cell,
                directions: dirs.len(),
            },
        )
    }
}

/// The stacked recurrent layers, with dropout between them (as PyTorch's `dropout` argument).
#[derive(Module, Debug)]
pub struct Recurrent {
    pub layer: Vec<RecurrentLayer>,
    pub dropout: Dropout,
    #[module(skip)]
    pub cell: Cell,
}

impl Recurrent {
    /// A fresh stack for a recurrent `config` (see `ModelConfig::recurrence`).
    pub fn new(c: &ModelConfig, cell: Cell, directions: usize, device: &Device) -> Self {
        let hidden = c.hidden_size / directions;
        Recurrent {
            layer: (0..c.num_hidden_layers)
                .map(|_| RecurrentLayer {
                    forward: Direction::new(cell, c.hidden_size, hidden, device),
                    reverse: (directions == 2)
                        .then(|| Direction::new(cell, c.hidden_size, hidden, device)),
                })
                .collect(),
            dropout: DropoutConfig::new(c.hidden_dropout_prob).init(),
            cell,
        }
    }

    /// Hidden states `[batch, len, hidden]` of embeddings `x` `[batch, len, hidden]`; `mask`
    /// `[batch, len]` is 1 for a token and 0 for padding (right-padded rows).
    pub fn forward(&self, mut x: Tensor<3>, mask: Tensor<2>) -> Tensor<3> {
        for (i, layer) in self.layer.iter().enumerate() {
            if i > 0 {
                x = kernels::dropout(x, &self.dropout);
            }
            x = layer.run(x, mask.clone(), self.cell);
        }
        x
    }
}
