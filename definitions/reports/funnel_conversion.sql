-- Sales funnel: sessions reaching each step, drop-off per step, by checkout A/B variant.
with steps as (
    select v.name as variant, ss.*
    from session_steps ss
    join analytics.experiment_assignments ea on ea.session_id = ss.session_id
        and ea.experiment_id = 1
    join analytics.experiment_variants v on v.id = ea.variant_id
    where ss.started_at >= :period_start and ss.started_at < :period_end
)
select
    st.variant,
    count(*) as visits,
    count(*) filter (where st.product_view) as product_views,
    count(*) filter (where st.add_to_cart) as carts,
    count(*) filter (where st.checkout) as checkouts,
    count(*) filter (where st.payment) as payments,
    count(*) filter (where st.purchase) as purchases,
    round(count(*) filter (where st.product_view)::numeric / nullif(count(*), 0), 4)
        as view_rate,
    round(count(*) filter (where st.add_to_cart)::numeric
          / nullif(count(*) filter (where st.product_view), 0), 4) as cart_rate,
    round(count(*) filter (where st.checkout)::numeric
          / nullif(count(*) filter (where st.add_to_cart), 0), 4) as checkout_rate,
    round(count(*) filter (where st.payment)::numeric
          / nullif(count(*) filter (where st.checkout), 0), 4) as payment_rate,
    round(count(*) filter (where st.purchase)::numeric
          / nullif(count(*) filter (where st.payment), 0), 4) as purchase_rate,
    round(count(*) filter (where st.purchase)::numeric / nullif(count(*), 0), 4)
        as conversion
from steps st
group by st.variant
order by st.variant collate "C"
